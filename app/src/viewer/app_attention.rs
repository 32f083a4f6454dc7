//! The window's half of the attention inspector: a click on a frame pixel becomes a question
//! to the engine thread, and its answer goes to the inspector window.

use stepscope_engine::worker::EngineCommand;

use super::app::StepscopeApp;
use super::attention_view::AttentionQuery;
use super::frame_view::ClickedPixel;
use super::live::AttentionAnswer;

/// What the frame view's read-out says a click does.
pub(super) const CLICK_HINT_LIVE: &str = "click: where this token attends";

impl StepscopeApp {
    /// Asks where the token under `pixel` attends at the current step of the shown seed.
    pub(super) fn inspect_attention_at(&mut self, pixel: ClickedPixel) {
        let Some(document) = &self.document else { return };
        if self.live.is_none() || document.live_record().is_none() {
            self.attention.explain(
                "Attention is computed on demand by the model, so it needs a live run \
                 (File > New live run). A recorded file holds only the attention it captured \
                 (see the Layers tab)."
                    .to_owned(),
            );
            return;
        }
        let manifest = document.manifest();
        let Some(token) = pixel.token(manifest.latent_shape, manifest.patch_size) else { return };
        let query = AttentionQuery { seed_idx: document.seed_idx, step_idx: self.time.step_idx(), token };
        self.ask_attention(query);
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
        let Some(document) = &self.document else { return };
        if let Some(query) = self.attention.follow_up(document.seed_idx, self.time.step_idx())
            && document.has_step(query.seed_idx, query.step_idx)
        {
            self.ask_attention(query);
        }
    }

    /// The inspector window, when open.
    pub(super) fn attention_window_ui(&mut self, ctx: &egui::Context) {
        if self.attention.open {
            self.attention.ui(ctx, self.settings.layers.colormap);
        }
    }

    /// Whether the attention inspector shows an answer.
    #[must_use]
    pub fn shows_attention(&self) -> bool {
        self.attention.open && self.attention.data().is_some()
    }
}
