//! What a pointer on the frames does in a live run: a click asks the engine where that pixel's
//! token attends (the answer goes to the attention inspector); while painting an intervention,
//! clicks and drags paint with the brush (a token's patch or one pixel).

use stepscope_engine::worker::EngineCommand;

use super::app::StepscopeApp;
use super::attention_view::AttentionQuery;
use super::frame_view::{ClickedPixel, FramePointer, PixelMark};
use super::live::AttentionAnswer;
use super::stored_attention::{has_stored_attention, stored_attention};

impl StepscopeApp {
    /// What the frame view's read-out says the pointer does.
    pub(super) fn frame_click_hint(&self) -> Option<&'static str> {
        let live = self.live.as_ref()?;
        Some(if live.intervene.painting {
            "click or drag: paint here"
        } else {
            "click: where this token attends"
        })
    }

    /// The painted pixels of the intervention being prepared, as marks over the frames.
    pub(super) fn paint_marks(&self) -> Vec<PixelMark> {
        let Some(live) = &self.live else { return Vec::new() };
        let colour = live.intervene.colour.swatch();
        live.intervene
            .pixels
            .iter()
            .map(|&[frame_idx, y, x]| PixelMark { frame_idx, rect: [x, y, 1, 1], colour })
            .collect()
    }

    /// Paints under the pointer, or (on a click) inspects the token's attention.
    pub(super) fn frame_pointer(&mut self, pointer: FramePointer) {
        let Some(document) = &self.document else { return };
        if let Some(live) = &mut self.live
            && live.intervene.painting
        {
            let manifest = document.manifest();
            let ClickedPixel { frame_idx, x, y } = pointer.pixel;
            live.intervene.touch(
                [frame_idx, y, x],
                pointer.clicked,
                manifest.latent_shape,
                manifest.patch_size,
            );
        } else if pointer.clicked {
            self.inspect_attention_at(pointer.pixel);
        }
    }

    /// Asks where the token under `pixel` attends at the current step of the shown seed.
    pub(super) fn inspect_attention_at(&mut self, pixel: ClickedPixel) {
        let Some(document) = &self.document else { return };
        let manifest = document.manifest();
        let Some(token) = pixel.token(manifest.latent_shape, manifest.patch_size) else { return };
        self.inspect_attention_of(token);
    }

    /// Shows where `token` attends at the current step of the shown seed: asked of the engine
    /// in a live run, read from the file's captures otherwise.
    pub(super) fn inspect_attention_of(&mut self, token: usize) {
        let Some(document) = &self.document else { return };
        let query = AttentionQuery { seed_idx: document.seed_idx, step_idx: self.time.step_idx(), token };
        if self.live.is_some() && document.live_record().is_some() {
            self.ask_attention(query);
        } else if has_stored_attention(document) {
            self.show_stored_attention(query);
        } else {
            self.attention.explain(
                "This file stores no attention. Attention is computed on demand in a live run \
                 (File > New live run); a recording keeps it for chosen query tokens with \
                 `--capture self_attn,cross_attn@all:q=0,17` (or the exporter's attention options)."
                    .to_owned(),
            );
        }
    }

    /// Reads `query`'s attention from the file's captures into the inspector.
    fn show_stored_attention(&mut self, query: AttentionQuery) {
        let Some(document) = &self.document else { return };
        match stored_attention(document, query) {
            Ok((maps, layer_names)) => {
                let stored_tokens = document.manifest().captures.query_tokens.clone();
                self.attention.receive_stored(query.seed_idx, &maps, (layer_names, stored_tokens));
            }
            Err(err) => self.attention.unanswerable(query, format!("{err:#}")),
        }
    }

    fn ask_attention(&mut self, query: AttentionQuery) {
        let Some(document) = &self.document else { return };
        if !document.has_step(query.seed_idx, query.step_idx) {
            self.attention.explain(format!(
                "Seed {} has not taken step {} yet: step there first.",
                query.seed_idx, query.step_idx
            ));
            return;
        }
        let Some(live) = &mut self.live else { return };
        let command = EngineCommand::InspectAttention {
            seed_idx: query.seed_idx,
            step_idx: query.step_idx,
            query_token: query.token,
        };
        if live.send(command) {
            self.attention.asked(query);
        }
    }

    /// Takes the engine's answer in, and asks again when the step cursor moved (if the
    /// inspector follows the step).
    pub(super) fn poll_attention(&mut self) {
        if let Some(answer) = self.live.as_mut().and_then(super::live::LiveSession::take_attention) {
            match answer {
                AttentionAnswer::Maps { seed_idx, maps } => self.attention.receive(seed_idx, &maps),
                AttentionAnswer::Failed => self.attention.failed(),
            }
        }
        if let Some(token) = self.attention.take_requested_token() {
            self.inspect_attention_of(token);
        }
        let Some(document) = &self.document else { return };
        let Some(query) = self.attention.follow_up(document.seed_idx, self.time.step_idx()) else { return };
        if document.live_record().is_none() {
            self.show_stored_attention(query);
        } else if document.has_step(query.seed_idx, query.step_idx) {
            self.ask_attention(query);
        }
    }

    /// The inspector window, when open.
    pub(super) fn attention_window_ui(&mut self, ctx: &egui::Context) {
        if self.attention.open {
            self.attention.ui(ctx, self.settings.colormap);
        }
    }

    /// Whether the attention inspector shows an answer.
    #[must_use]
    pub fn shows_attention(&self) -> bool {
        self.attention.open && self.attention.data().is_some()
    }
}
