//! The attention inspector: a click on a pixel of a live run's frames asks the engine where that
//! token attends at the current step. The window shows a layer x head grid of small maps (each
//! over every frame, through the colormap shader), the picked map large with the query token
//! outlined and the weight under the pointer, and the picked head's weights on the prompt
//! tokens. With "follow the step", moving the step cursor asks again for the new step.

use std::sync::Arc;

use egui::{Color32, Stroke, Vec2};
use egui_plot::{Bar, BarChart, Plot};
use stepscope_engine::session::AttentionMaps;

use super::attention_data::{AttentionData, HeadPick};
use super::gpu::{self, Colormap, GpuImage, ImageStyle};

/// Side of one token in the grid's small maps, in points (below 1 when a Wan frame of 52 tokens
/// across must fit a cell).
const THUMB_TOKEN: std::ops::RangeInclusive<f32> = 0.5..=6.0;
/// Side of one token in the large map, in points; at the smallest, frames wrap into rows.
const LARGE_TOKEN: std::ops::RangeInclusive<f32> = 2.0..=24.0;
/// The most frames a grid cell shows side by side; a longer video's cells show the query's
/// frame alone (the large map shows them all).
const THUMB_FRAMES: usize = 4;
/// Gap between frames, in points.
const FRAME_GAP: f32 = 3.0;
/// Width the grid's maps and the large map aim for, in points: the window stays narrow enough
/// to leave the frames in view.
const MAP_WIDTH: f32 = 560.0;

/// A token of one seed's step that the user asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionQuery {
    pub seed_idx: usize,
    pub step_idx: usize,
    /// Flat index into the `[F', H', W']` token grid.
    pub token: usize,
}

/// The inspector's state.
#[derive(Debug)]
pub struct AttentionView {
    pub open: bool,
    /// Asked of the engine, not answered yet.
    pending: Option<AttentionQuery>,
    data: Option<AttentionData>,
    layer_idx: usize,
    pick: HeadPick,
    /// Ask again when the step cursor moves.
    pub follow_step: bool,
    /// One colour scale for the whole grid instead of one per map.
    shared_scale: bool,
    /// Why there is nothing to show, when there is not.
    pub notice: Option<String>,
    answers: u64,
    /// A question the file cannot answer (not asked again while the cursor stays).
    unanswerable: Option<AttentionQuery>,
    /// A stored query token the user picked in the window, for the app to load.
    requested_token: Option<usize>,
}

impl Default for AttentionView {
    fn default() -> Self {
        Self {
            open: false,
            pending: None,
            data: None,
            layer_idx: 0,
            pick: HeadPick::Mean,
            follow_step: true,
            shared_scale: false,
            notice: None,
            answers: 0,
            unanswerable: None,
            requested_token: None,
        }
    }
}

impl AttentionView {
    /// Records that `query` was sent to the engine, and opens the window.
    pub fn asked(&mut self, query: AttentionQuery) {
        self.pending = Some(query);
        self.notice = None;
        self.open = true;
    }

    /// Shows `notice` in place of maps (e.g. why no question could be asked).
    pub fn explain(&mut self, notice: String) {
        self.notice = Some(notice);
        self.open = true;
    }

    /// Takes in the engine's answer for `seed_idx`.
    pub fn receive(&mut self, seed_idx: usize, maps: &Arc<AttentionMaps>) {
        self.pending = None;
        self.answers += 1;
        self.take_answer(AttentionData::new(seed_idx, maps, self.answers));
    }

    /// Shows attention a file stores for `seed_idx`: rows for the model layers `layer_names`,
    /// and `stored_tokens` to pick from.
    pub fn receive_stored(
        &mut self,
        seed_idx: usize,
        maps: &AttentionMaps,
        (layer_names, stored_tokens): (Vec<usize>, Vec<usize>),
    ) {
        self.answers += 1;
        self.open = true;
        self.unanswerable = None;
        let data = AttentionData::new(seed_idx, maps, self.answers)
            .and_then(|data| data.stored(layer_names, stored_tokens));
        self.take_answer(data);
    }

    /// `query` cannot be answered from the file: says why and does not ask again.
    pub fn unanswerable(&mut self, query: AttentionQuery, why: String) {
        self.unanswerable = Some(query);
        self.explain(why);
    }

    /// The stored query token the user picked in the window, once.
    pub fn take_requested_token(&mut self) -> Option<usize> {
        self.requested_token.take()
    }

    fn take_answer(&mut self, data: anyhow::Result<AttentionData>) {
        match data {
            Ok(data) => {
                self.layer_idx = self.layer_idx.min(data.layers - 1);
                if let HeadPick::Head(head_idx) = self.pick
                    && head_idx >= data.heads
                {
                    self.pick = HeadPick::Mean;
                }
                self.data = Some(data);
                self.notice = None;
            }
            Err(err) => self.notice = Some(format!("{err:#}")),
        }
    }

    /// The engine failed to answer (the error shows with the live run's).
    pub fn failed(&mut self) {
        self.pending = None;
    }

    /// The answer shown, if any.
    #[must_use]
    pub fn data(&self) -> Option<&AttentionData> {
        self.data.as_ref()
    }

    /// The question to ask when the cursor is at `(seed_idx, step_idx)`: the shown token at
    /// that step, if following the step and the shown answer is for another one.
    #[must_use]
    pub fn follow_up(&self, seed_idx: usize, step_idx: usize) -> Option<AttentionQuery> {
        let data = self.data.as_ref()?;
        let stale = (data.seed_idx, data.step_idx) != (seed_idx, step_idx);
        let query = AttentionQuery { seed_idx, step_idx, token: data.query_token };
        (self.open && self.follow_step && stale && self.pending.is_none() && self.unanswerable != Some(query))
            .then_some(query)
    }

    /// The window, when open.
    pub fn ui(&mut self, ctx: &egui::Context, colormap: Colormap) {
        let mut open = self.open;
        // At the right, so that the frames stay in view on a wide window.
        let top_right = ctx.content_rect().right_top() + Vec2::new(-8.0, 64.0);
        egui::Window::new("Attention")
            .open(&mut open)
            .pivot(egui::Align2::RIGHT_TOP)
            .default_pos(top_right)
            .default_size([MAP_WIDTH + 80.0, 660.0])
            .scroll([true, true])
            .show(ctx, |ui| self.contents_ui(ui, colormap));
        self.open = open;
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui, colormap: Colormap) {
        if let Some(pending) = self.pending {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "Running step {} of seed {} again for token {}…",
                    pending.step_idx, pending.seed_idx, pending.token
                ));
            });
        }
        if let Some(notice) = &self.notice {
            ui.colored_label(ui.visuals().warn_fg_color, notice);
        }
        let Some(data) = &self.data else {
            if self.pending.is_none() && self.notice.is_none() {
                ui.label("Click a pixel in the Frames tab of a live run to see where its token attends.");
            }
            return;
        };
        let (f, r, c) = data.query_position;
        let source = if data.stored_tokens.is_empty() { "conditional pass" } else { "stored in the file" };
        ui.label(format!(
            "Token ({f}, {r}, {c}) (#{}) at step {} of seed {}: self-attention over the {} x {} x {} \
             tokens, {source}",
            data.query_token, data.step_idx, data.seed_idx, data.grid[0], data.grid[1], data.grid[2]
        ));
        if !data.stored_tokens.is_empty() {
            let mut token = data.query_token;
            let label = ui.label("Stored query token");
            egui::ComboBox::from_id_salt("stored_query_token")
                .selected_text(format!("#{token}"))
                .show_ui(ui, |ui| {
                    for &stored in &data.stored_tokens {
                        ui.selectable_value(&mut token, stored, format!("#{stored}"));
                    }
                })
                .response
                .labelled_by(label.id);
            if token != data.query_token {
                self.requested_token = Some(token);
            }
        }
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.follow_step, "Follow the step")
                .on_hover_text("Ask again for this token whenever the step cursor moves");
            ui.checkbox(&mut self.shared_scale, "One scale for all maps");
        });
        ui.separator();
        let shared = self.shared_scale.then(|| data.shared_range());
        if let Some((layer_idx, pick)) = grid_ui(ui, data, (self.layer_idx, self.pick), colormap, shared) {
            self.layer_idx = layer_idx;
            self.pick = pick;
        }
        ui.separator();
        large_map_ui(ui, data, (self.layer_idx, self.pick), colormap, shared);
        ui.separator();
        cross_attention_ui(ui, data, (self.layer_idx, self.pick));
    }
}

/// The colour range of `map`: the shared one, or its own `[min, max]`.
fn range_of(map: &gpu::GpuTensor, shared: Option<[f32; 2]>) -> [f32; 2] {
    shared.or_else(|| map.channel_range(0)).unwrap_or([0.0, 1.0])
}

/// Draws the frames `shown` of `map` at `token` points per token, `per_row` to a row (left to
/// right, then down); returns the rectangle of each frame drawn, in the order of `shown`.
fn frames_ui(
    ui: &mut egui::Ui,
    (map, style): (&gpu::GpuTensor, &ImageStyle),
    (shown, per_row): (std::ops::Range<usize>, usize),
    token: f32,
    sense: egui::Sense,
) -> (Vec<egui::Rect>, egui::Response) {
    let [_, _, rows, cols] = map.shape();
    let per_row = per_row.clamp(1, shown.len().max(1));
    let lines = shown.len().div_ceil(per_row).max(1);
    let frame_size = Vec2::new(cols as f32, rows as f32) * token;
    let step = frame_size + Vec2::splat(FRAME_GAP);
    let total = Vec2::new(per_row as f32 * step.x - FRAME_GAP, lines as f32 * step.y - FRAME_GAP);
    let (rect, response) = ui.allocate_exact_size(total, sense);
    let mut rects = Vec::with_capacity(shown.len());
    for (slot, frame_idx) in shown.enumerate() {
        let min = rect.min + Vec2::new((slot % per_row) as f32 * step.x, (slot / per_row) as f32 * step.y);
        let frame_rect = egui::Rect::from_min_size(min, frame_size);
        if ui.is_rect_visible(frame_rect)
            && let Some(image) = GpuImage::new(map.clone(), frame_idx, style.clone())
        {
            gpu::paint_image(ui.painter(), frame_rect, image);
        }
        rects.push(frame_rect);
    }
    (rects, response)
}

/// How many frames of `cols` tokens at `token` points fit a row of `width` points.
fn frames_per_row(width: f32, cols: usize, token: f32) -> usize {
    (((width + FRAME_GAP) / (cols as f32 * token + FRAME_GAP)).floor() as usize).max(1)
}

/// The layer x head grid; returns the cell clicked.
fn grid_ui(
    ui: &mut egui::Ui,
    data: &AttentionData,
    selected: (usize, HeadPick),
    colormap: Colormap,
    shared: Option<[f32; 2]>,
) -> Option<(usize, HeadPick)> {
    let [frames, _, cols] = data.grid;
    let columns = data.heads + 1;
    // A long video's cells show the frame of the query token alone.
    let shown =
        if frames <= THUMB_FRAMES { 0..frames } else { data.query_position.0..data.query_position.0 + 1 };
    let per_cell = MAP_WIDTH / columns as f32 - FRAME_GAP * shown.len() as f32;
    let token =
        (per_cell / (shown.len() * cols).max(1) as f32).clamp(*THUMB_TOKEN.start(), *THUMB_TOKEN.end());
    let picks: Vec<HeadPick> = (0..data.heads).map(HeadPick::Head).chain([HeadPick::Mean]).collect();
    let mut clicked = None;
    egui::Grid::new("attention_grid").spacing(Vec2::new(8.0, 4.0)).show(ui, |ui| {
        if shown.len() < frames {
            ui.label(format!("frame {}", shown.start))
                .on_hover_text("The query token's frame; the large map below shows every frame");
        } else {
            ui.label("");
        }
        for pick in &picks {
            ui.label(pick.label());
        }
        ui.end_row();
        for layer_idx in 0..data.layers {
            ui.label(format!("layer {}", data.layer_name(layer_idx)));
            for &pick in &picks {
                let Some(map) = data.map(layer_idx, pick) else { continue };
                let style =
                    ImageStyle::Colormap { channel_idx: 0, map: colormap, range: range_of(map, shared) };
                let (_, response) =
                    frames_ui(ui, (map, &style), (shown.clone(), shown.len()), token, egui::Sense::click());
                if (layer_idx, pick) == selected {
                    ui.painter().rect_stroke(
                        response.rect.expand(2.0),
                        1.0,
                        Stroke::new(2.0, ui.visuals().selection.stroke.color),
                        egui::StrokeKind::Outside,
                    );
                }
                let response = response.on_hover_text(format!(
                    "layer {}, {}: click to enlarge",
                    data.layer_name(layer_idx),
                    pick.label()
                ));
                if response.clicked() {
                    clicked = Some((layer_idx, pick));
                }
            }
            ui.end_row();
        }
    });
    clicked
}

/// The picked map, large, with the query token outlined, a legend and the weight under the
/// pointer.
fn large_map_ui(
    ui: &mut egui::Ui,
    data: &AttentionData,
    (layer_idx, pick): (usize, HeadPick),
    colormap: Colormap,
    shared: Option<[f32; 2]>,
) {
    let Some(map) = data.map(layer_idx, pick) else { return };
    let [frames, rows, cols] = data.grid;
    ui.label(egui::RichText::new(format!("Layer {}, {}", data.layer_name(layer_idx), pick.label())).strong());
    let range = range_of(map, shared);
    let style = ImageStyle::Colormap { channel_idx: 0, map: colormap, range };
    let room = MAP_WIDTH - FRAME_GAP * frames as f32;
    let token = (room / (frames * cols).max(1) as f32).clamp(*LARGE_TOKEN.start(), *LARGE_TOKEN.end());
    let per_row = frames_per_row(MAP_WIDTH, cols, token);
    let (rects, response) = frames_ui(ui, (map, &style), (0..frames, per_row), token, egui::Sense::hover());
    let (qf, qr, qc) = data.query_position;
    if let Some(frame_rect) = rects.get(qf) {
        let cell = egui::Rect::from_min_size(
            frame_rect.min + Vec2::new(qc as f32, qr as f32) * token,
            Vec2::splat(token),
        );
        ui.painter().rect_stroke(cell, 0.0, Stroke::new(2.0, Color32::WHITE), egui::StrokeKind::Inside);
        ui.painter().rect_stroke(
            cell.shrink(2.0),
            0.0,
            Stroke::new(1.0, Color32::BLACK),
            egui::StrokeKind::Inside,
        );
    }
    if let Some(pointer) = response.hover_pos()
        && let Some(frame_idx) = rects.iter().position(|rect| rect.contains(pointer))
    {
        let local = (pointer - rects[frame_idx].min) / token;
        let (r, c) = ((local.y as usize).min(rows - 1), (local.x as usize).min(cols - 1));
        if let Some(weight) = data.weight(layer_idx, pick, (frame_idx, r, c)) {
            response.on_hover_text_at_pointer(format!("token ({frame_idx}, {r}, {c}): {weight:.4}"));
        }
    }
    ui.horizontal(|ui| {
        let order = if per_row < frames { "left to right, then down" } else { "left to right" };
        ui.label(format!("frames 0 to {}, {order}; white box: the query token", frames - 1));
        gpu::colormap_legend_ui(ui, colormap, range);
    });
}

/// The picked head's weights on each prompt token, as bars.
fn cross_attention_ui(ui: &mut egui::Ui, data: &AttentionData, (layer_idx, pick): (usize, HeadPick)) {
    if data.text_len == 0 {
        ui.label("Cross-attention was not captured.");
        return;
    }
    let weights = data.cross_weights(layer_idx, pick);
    ui.label(format!(
        "Cross-attention on the {} prompt tokens (layer {}, {})",
        data.text_len,
        data.layer_name(layer_idx),
        pick.label()
    ));
    let bars: Vec<Bar> = weights
        .iter()
        .enumerate()
        .map(|(token_idx, &weight)| {
            Bar::new(token_idx as f64, f64::from(weight)).width(0.7).name(format!("prompt token {token_idx}"))
        })
        .collect();
    Plot::new("cross_attention")
        .height(140.0)
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
        .allow_zoom(false)
        .allow_drag(false)
        .x_axis_label("prompt token")
        .y_axis_label("weight")
        .show(ui, |plot_ui| plot_ui.bar_chart(BarChart::new("weight", bars)));
}
