//! Playing the video itself: one frame at a time along the frame axis (not the steps), large,
//! with the latent frame and the decoded frame side by side where the run stores both, and Wan's
//! time mapping between them (the VAE compresses time 4x: latent frame 0 is decoded frame 0, and
//! latent frame i >= 1 covers decoded frames 4i - 3 to 4i).

use std::ops::RangeInclusive;

use egui::Vec2;
use serde::{Deserialize, Serialize};

use super::gpu::{GpuTensor, ImageStyle};
use super::step_view::StepView;
use super::tensor_cache::NoTensor;
use super::view::{Cursor, ViewContext};

/// Frames per second the player allows.
const FPS_RANGE: RangeInclusive<f32> = 1.0..=60.0;

/// The player's state: where it is along the frames, and whether it plays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FramePlayer {
    /// The frame shown, in frames of the tensor shown (fractional while playing).
    #[serde(skip)]
    position: f32,
    #[serde(skip)]
    playing: bool,
    fps: f32,
}

impl Default for FramePlayer {
    fn default() -> Self {
        Self { position: 0.0, playing: false, fps: 16.0 }
    }
}

/// How many decoded frames one latent frame stands for, from the two frame counts: Wan's VAE
/// keeps the first frame and compresses the rest `k`-fold, so `decoded = k * (latent - 1) + 1`.
/// `None` when the counts do not fit that rule.
#[must_use]
pub fn time_compression(latent_frames: usize, decoded_frames: usize) -> Option<usize> {
    if latent_frames < 2 {
        return (latent_frames == 1 && decoded_frames == 1).then_some(1);
    }
    let rest = decoded_frames.checked_sub(1)?;
    (rest % (latent_frames - 1) == 0 && rest > 0).then(|| rest / (latent_frames - 1))
}

/// The latent frame that covers decoded frame `decoded_idx` at compression `k`.
#[must_use]
pub fn latent_frame_of(decoded_idx: usize, k: usize) -> usize {
    decoded_idx.div_ceil(k.max(1))
}

/// The decoded frames latent frame `latent_idx` covers at compression `k`.
#[must_use]
pub fn decoded_frames_of(latent_idx: usize, k: usize) -> RangeInclusive<usize> {
    if latent_idx == 0 { 0..=0 } else { k * (latent_idx - 1) + 1..=k * latent_idx }
}

impl FramePlayer {
    /// The transport (play, frame slider, fps), then the frame large: the decoded frame and the
    /// latent frame beside it where the run stores both at the cursor's step.
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        let Cursor { seed_idx, step_idx, view } = cx.cursor;
        let document = cx.document;
        let ctx = ui.ctx().clone();
        let latent =
            fetch(&ctx, cx, (seed_idx, step_idx, if view == StepView::Video { StepView::X0 } else { view }));
        let decoded = if document.has_view(StepView::Video) {
            fetch(&ctx, cx, (seed_idx, step_idx, StepView::Video))
        } else {
            Err(NoTensor::Missing(String::new()))
        };
        let shown = match (view, &decoded, &latent) {
            (StepView::Video, Ok(decoded), _) => decoded,
            (_, _, Ok(latent)) => latent,
            (_, Ok(decoded), _) => decoded,
            (_, _, Err(missing)) => {
                missing.show(ui);
                return;
            }
        };
        let frames = shown.num_frames();
        self.transport_ui(ui, frames);
        let frame_idx = (self.position.floor() as usize).min(frames - 1);
        let available = ui.available_size() - Vec2::new(0.0, 2.0 * ui.spacing().interact_size.y);
        // Side by side where both exist and their frame counts follow Wan's time mapping.
        if let (Ok(decoded), Ok(latent)) = (&decoded, &latent)
            && let Some(k) = time_compression(latent.num_frames(), decoded.num_frames())
        {
            let (decoded_idx, latent_idx) = if frames == decoded.num_frames() {
                (frame_idx, latent_frame_of(frame_idx, k))
            } else {
                (*decoded_frames_of(frame_idx, k).end(), frame_idx)
            };
            let covered = decoded_frames_of(latent_idx, k);
            ui.label(format!(
                "decoded frame {decoded_idx} of {} (left) is in latent frame {latent_idx} of {} (right), which \
                 covers decoded frames {}-{} ({k}x in time)",
                decoded.num_frames(),
                latent.num_frames(),
                covered.start(),
                covered.end()
            ));
            let half = Vec2::new((available.x - 8.0) / 2.0, available.y);
            ui.horizontal(|ui| {
                frame_ui(ui, cx, decoded, decoded_idx, half);
                frame_ui(ui, cx, latent, latent_idx, half);
            });
        } else {
            ui.label(format!("frame {frame_idx} of {frames}"));
            frame_ui(ui, cx, shown, frame_idx, available);
        }
    }

    /// Play/pause, the frame slider and the fps; advances the frame while playing.
    fn transport_ui(&mut self, ui: &mut egui::Ui, frames: usize) {
        let last = frames.saturating_sub(1) as f32;
        if self.playing {
            let dt_s = ui.input(|input| input.stable_dt).min(0.25);
            self.position += dt_s * self.fps;
            if self.position >= last + 1.0 {
                self.position = 0.0;
            }
            ui.ctx().request_repaint();
        }
        self.position = self.position.clamp(0.0, last);
        ui.horizontal(|ui| {
            let label = if self.playing { "⏸ Pause video" } else { "▶ Play video" };
            if ui.button(label).on_hover_text("Play along the frames of this step, looping").clicked() {
                self.playing = !self.playing;
            }
            let mut frame = self.position.floor() as usize;
            let slider = egui::Slider::new(&mut frame, 0..=frames.saturating_sub(1)).text("frame");
            if ui.add(slider).changed() {
                self.position = frame as f32;
            }
            ui.add(egui::Slider::new(&mut self.fps, FPS_RANGE).logarithmic(true).text("fps"));
        });
    }
}

/// The tensor of `view` for `seed_idx` at `step_idx`, or why there is none.
fn fetch(
    ctx: &egui::Context,
    cx: &mut ViewContext<'_>,
    (seed_idx, step_idx, view): (usize, usize, StepView),
) -> Result<GpuTensor, NoTensor> {
    let document = cx.document;
    let Some(owner) = document.view_owner(seed_idx, step_idx, view) else {
        return Err(document.why_missing(seed_idx, step_idx, view).into());
    };
    cx.caches.tensors.get(ctx, document, view.tensor_name(owner, step_idx))
}

/// Frame `frame_idx` of `tensor`, as large as fits `available` at its aspect.
fn frame_ui(
    ui: &mut egui::Ui,
    cx: &mut ViewContext<'_>,
    tensor: &GpuTensor,
    frame_idx: usize,
    available: Vec2,
) {
    let [height, width] = tensor.frame_size();
    let zoom = (available.x / width.max(1) as f32).min(available.y / height.max(1) as f32).max(0.01);
    let size = Vec2::new(width as f32, height as f32) * zoom;
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let style = ImageStyle::default_for(tensor);
    cx.caches.frame_levels.paint(ui, (tensor, frame_idx, &style), rect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wan_maps_81_decoded_frames_onto_21_latent_frames() {
        assert_eq!(time_compression(21, 81), Some(4));
        assert_eq!(time_compression(3, 9), Some(4), "the exporter fixture");
        assert_eq!(time_compression(5, 5), Some(1), "pixels: no compression");
        assert_eq!(time_compression(21, 80), None);
        assert_eq!(time_compression(1, 1), Some(1));
        assert_eq!(latent_frame_of(0, 4), 0);
        assert_eq!(latent_frame_of(1, 4), 1);
        assert_eq!(latent_frame_of(4, 4), 1);
        assert_eq!(latent_frame_of(5, 4), 2);
        assert_eq!(latent_frame_of(80, 4), 20);
        assert_eq!(decoded_frames_of(0, 4), 0..=0);
        assert_eq!(decoded_frames_of(1, 4), 1..=4);
        assert_eq!(decoded_frames_of(20, 4), 77..=80);
        for decoded_idx in 0..81 {
            assert!(decoded_frames_of(latent_frame_of(decoded_idx, 4), 4).contains(&decoded_idx));
        }
    }
}
