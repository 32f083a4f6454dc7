//! Interventions on a live run, by hand: paint over the predicted clean video at the cursor's
//! step (a token's patch or single pixels, in a task colour) and continue from the next step, or knock out one
//! transformer block from the cursor's step on. Either way the altered run becomes a new seed,
//! shown next to the original in the Compare seeds tab.

use std::collections::BTreeSet;

use egui::Color32;
use stepscope_engine::tasks::Color;
use stepscope_engine::trajectory::Intervention;
use stepscope_engine::worker::LiveRecord;

/// What a paint stroke writes into `x0_hat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaintColour {
    /// A colour of the tasks' palette (pixel-space models: three channels in `[-1, 1]`).
    Task(Color),
    /// Zero in every channel (any latent).
    Zero,
}

impl PaintColour {
    /// The colours on offer for a latent with `channels` channels.
    #[must_use]
    pub fn choices(channels: usize) -> Vec<Self> {
        if channels == 3 {
            Color::ALL.into_iter().map(Self::Task).chain([Self::Zero]).collect()
        } else {
            vec![Self::Zero]
        }
    }

    /// One value per channel.
    #[must_use]
    pub fn value(self, channels: usize) -> Vec<f32> {
        match self {
            Self::Task(colour) if channels == 3 => colour.signed().to_vec(),
            Self::Task(_) | Self::Zero => vec![0.0; channels],
        }
    }

    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Task(colour) => colour.name(),
            Self::Zero => "zero",
        }
    }

    /// How painted pixels are shown over the frames.
    #[must_use]
    pub fn swatch(self) -> Color32 {
        match self {
            Self::Task(colour) => {
                let [r, g, b] = colour.rgb8();
                Color32::from_rgb(r, g, b)
            }
            Self::Zero => Color32::GRAY,
        }
    }
}

/// What one touch of the brush paints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brush {
    /// The whole patch of the token under the pointer: what the model sees as one unit.
    Token,
    /// The latent pixel under the pointer.
    Pixel,
}

/// The intervention being prepared.
#[derive(Debug, Clone)]
pub struct InterveneState {
    /// Clicks and drags on the frames paint instead of inspecting attention.
    pub painting: bool,
    pub colour: PaintColour,
    pub brush: Brush,
    /// Painted pixels, `[frame, y, x]` of the latent.
    pub pixels: BTreeSet<[usize; 3]>,
    /// The block "Skip layer" knocks out.
    pub skip_layer: usize,
    /// Members of a seed ensemble, `K`.
    pub ensemble_seeds: usize,
    /// Steps over which the ensemble's latents are merged, `M`.
    pub merge_steps: usize,
}

impl Default for InterveneState {
    fn default() -> Self {
        Self {
            painting: false,
            colour: PaintColour::Task(Color::White),
            brush: Brush::Token,
            pixels: BTreeSet::new(),
            skip_layer: 0,
            ensemble_seeds: 4,
            merge_steps: 5,
        }
    }
}

impl InterveneState {
    /// The pixels one touch at `[frame, y, x]` paints, for a latent `[C, F, H, W]` cut into
    /// `patch_size` (`[t, h, w]`) patches; none outside the latent.
    #[must_use]
    pub fn brush_pixels(
        &self,
        [frame, y, x]: [usize; 3],
        latent_shape: [usize; 4],
        patch_size: [usize; 3],
    ) -> Vec<[usize; 3]> {
        let [_, frames, height, width] = latent_shape;
        if frame >= frames || y >= height || x >= width {
            return Vec::new();
        }
        match self.brush {
            Brush::Pixel => vec![[frame, y, x]],
            Brush::Token => {
                let [p_t, p_h, p_w] = patch_size.map(|p| p.max(1));
                let (f0, y0, x0) = (frame / p_t * p_t, y / p_h * p_h, x / p_w * p_w);
                let mut pixels = Vec::with_capacity(p_t * p_h * p_w);
                for f in f0..(f0 + p_t).min(frames) {
                    for yy in y0..(y0 + p_h).min(height) {
                        for xx in x0..(x0 + p_w).min(width) {
                            pixels.push([f, yy, xx]);
                        }
                    }
                }
                pixels
            }
        }
    }

    /// Paints one touch at `at` (or, for a click on pixels all painted already, unpaints them).
    pub fn touch(&mut self, at: [usize; 3], clicked: bool, latent_shape: [usize; 4], patch_size: [usize; 3]) {
        let pixels = self.brush_pixels(at, latent_shape, patch_size);
        if clicked && pixels.iter().all(|pixel| self.pixels.contains(pixel)) {
            for pixel in &pixels {
                self.pixels.remove(pixel);
            }
        } else {
            self.pixels.extend(pixels);
        }
    }
}

/// What the user asked: a fork of the shown seed at `step_idx` altered by `intervention`.
#[derive(Debug, Clone, PartialEq)]
pub struct InterveneRequest {
    pub step_idx: usize,
    pub intervention: Intervention,
}

/// Where the cursor is and what the run allows, for the intervention controls.
#[derive(Debug, Clone, Copy)]
struct RunState {
    cursor_step: usize,
    /// Steps the shown seed has taken.
    taken: usize,
    total: usize,
    busy: bool,
}

/// The row of intervention controls under the live tool bar; `next_rng_seed` is the first noise
/// seed an ensemble's members take.
pub fn intervene_ui(
    ui: &mut egui::Ui,
    state: &mut InterveneState,
    record: &LiveRecord,
    (seed_idx, cursor_step): (usize, usize),
    (busy, next_rng_seed): (bool, u64),
) -> Option<InterveneRequest> {
    let manifest = record.manifest();
    let channels = manifest.latent_shape[0];
    let run =
        RunState { cursor_step, taken: record.next_step(seed_idx), total: manifest.schedule.steps, busy };
    let num_layers = manifest
        .model
        .config
        .get("num_layers")
        .and_then(serde_json::Value::as_u64)
        .and_then(|layers| usize::try_from(layers).ok())
        .unwrap_or(0);
    ui.horizontal_wrapped(|ui| {
        ui.label("Intervene:");
        let painted = paint_ui(ui, state, channels, run);
        ui.separator();
        let skipped = skip_ui(ui, state, num_layers, run);
        ui.separator();
        let ensemble = ensemble_ui(ui, state, next_rng_seed, run);
        painted.or(skipped).or(ensemble)
    })
    .inner
}

/// Paint mode, colour and brush, and "Continue painted".
fn paint_ui(
    ui: &mut egui::Ui,
    state: &mut InterveneState,
    channels: usize,
    run: RunState,
) -> Option<InterveneRequest> {
    ui.toggle_value(&mut state.painting, "Paint x0_hat")
        .on_hover_text("Click or drag on the frames to paint the prediction at the cursor's step");
    let choices = PaintColour::choices(channels);
    if !choices.contains(&state.colour) {
        state.colour = choices[0];
    }
    egui::ComboBox::from_label("paint colour").selected_text(state.colour.label()).show_ui(ui, |ui| {
        for choice in choices {
            ui.selectable_value(&mut state.colour, choice, choice.label());
        }
    });
    ui.selectable_value(&mut state.brush, Brush::Token, "token")
        .on_hover_text("Paint the whole patch of a token: what the model sees as one unit");
    ui.selectable_value(&mut state.brush, Brush::Pixel, "pixel");
    ui.label(format!("{} pixels", state.pixels.len()));
    if ui.small_button("Clear").clicked() {
        state.pixels.clear();
    }
    // Painting step k's prediction continues from the state entering step k + 1.
    let RunState { cursor_step, taken, total, busy } = run;
    let can_paint = !busy && !state.pixels.is_empty() && cursor_step < taken && cursor_step + 1 < total;
    let paint = ui
        .add_enabled(can_paint, egui::Button::new(format!("Continue painted from step {}", cursor_step + 1)))
        .on_hover_text(
            "A new seed: this step's x0_hat with the painted pixels, the noise in the latent kept",
        );
    if !paint.clicked() {
        return None;
    }
    let pixels = std::mem::take(&mut state.pixels).into_iter().collect();
    state.painting = false;
    Some(InterveneRequest {
        step_idx: cursor_step + 1,
        intervention: Intervention::PaintX0 { pixels, value: state.colour.value(channels) },
    })
}

/// The block to knock out, and "Fork without it".
fn skip_ui(
    ui: &mut egui::Ui,
    state: &mut InterveneState,
    num_layers: usize,
    run: RunState,
) -> Option<InterveneRequest> {
    if num_layers == 0 {
        return None;
    }
    state.skip_layer = state.skip_layer.min(num_layers - 1);
    egui::ComboBox::from_label("knocked out").selected_text(format!("layer {}", state.skip_layer)).show_ui(
        ui,
        |ui| {
            for layer in 0..num_layers {
                ui.selectable_value(&mut state.skip_layer, layer, format!("layer {layer}"));
            }
        },
    );
    let RunState { cursor_step, taken, total, busy } = run;
    let can_skip = !busy && cursor_step <= taken && cursor_step < total;
    let skip = ui
        .add_enabled(can_skip, egui::Button::new(format!("Fork without it from step {cursor_step}")))
        .on_hover_text("A new seed that runs without this block (its output = its input) from this step on");
    skip.clicked().then(|| InterveneRequest {
        step_idx: cursor_step,
        intervention: Intervention::SkipLayers { layers: vec![state.skip_layer] },
    })
}

/// The ensemble's size and merged steps, and "Start ensemble".
fn ensemble_ui(
    ui: &mut egui::Ui,
    state: &mut InterveneState,
    next_rng_seed: u64,
    run: RunState,
) -> Option<InterveneRequest> {
    let max_members = stepscope_engine::trajectory::MAX_ENSEMBLE_MEMBERS;
    ui.add(egui::DragValue::new(&mut state.ensemble_seeds).range(2..=max_members).suffix(" seeds"));
    ui.add(
        egui::DragValue::new(&mut state.merge_steps)
            .range(1..=run.total.max(1))
            .prefix("merged over ")
            .suffix(" steps"),
    );
    let ensemble = ui.add_enabled(!run.busy, egui::Button::new("Start ensemble")).on_hover_text(format!(
        "A new seed: {} noise seeds (from {next_rng_seed}) sampled in lockstep, their latents averaged after each \
         of the first {} steps, then the first one alone (the training-free ensemble)",
        state.ensemble_seeds, state.merge_steps
    ));
    ensemble.clicked().then(|| {
        let members = u64::try_from(state.ensemble_seeds).unwrap_or(2);
        InterveneRequest {
            step_idx: 0,
            intervention: Intervention::Ensemble {
                rng_seeds: (0..members).map(|j| next_rng_seed.wrapping_add(j)).collect(),
                merge_steps: state.merge_steps,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_values_follow_the_latent_channels() {
        assert_eq!(PaintColour::Task(Color::Black).value(3), [-1.0, -1.0, -1.0]);
        assert_eq!(PaintColour::Task(Color::White).value(16), vec![0.0; 16]);
        assert_eq!(PaintColour::Zero.value(4), [0.0; 4]);
        assert_eq!(PaintColour::choices(3).len(), Color::ALL.len() + 1);
        assert_eq!(PaintColour::choices(16), [PaintColour::Zero]);
    }

    #[test]
    fn the_token_brush_paints_a_patch_and_a_click_on_it_unpaints() {
        let mut state = InterveneState::default();
        let (shape, patch) = ([3, 5, 6, 6], [1, 2, 2]);
        assert_eq!(state.brush_pixels([2, 3, 5], shape, patch), [[2, 2, 4], [2, 2, 5], [2, 3, 4], [2, 3, 5]]);
        assert!(state.brush_pixels([5, 0, 0], shape, patch).is_empty());
        state.touch([2, 3, 5], true, shape, patch);
        assert_eq!(state.pixels.len(), 4);
        state.touch([2, 2, 4], true, shape, patch);
        assert!(state.pixels.is_empty());
        state.brush = Brush::Pixel;
        state.touch([0, 1, 1], false, shape, patch);
        state.touch([0, 1, 1], false, shape, patch);
        assert_eq!(state.pixels.iter().copied().collect::<Vec<_>>(), [[0, 1, 1]]);
    }
}
