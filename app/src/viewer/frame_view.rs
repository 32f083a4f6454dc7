//! The centre view: every frame of the video at the current step, side by side, wrapping into
//! a grid, scaled up with nearest-neighbour sampling so that each latent pixel stays a crisp
//! square.

use egui::{Vec2, load::SizedTexture};

use super::frame_cache::FrameStack;
use super::latent_rgb::LatentVideo;

/// Screen points per latent pixel the zoom allows.
pub const ZOOM_RANGE: std::ops::RangeInclusive<f32> = 1.0..=64.0;

/// Channels listed in the hover read-out; the rest are counted.
const MAX_HOVER_CHANNELS: usize = 4;

/// Gap between frames, in points.
const FRAME_GAP: f32 = 8.0;

/// The zoom bar, then the frames of `frames` at `zoom` screen points per latent pixel.
/// Ctrl + scroll over the frames zooms too; `fit` first sets the zoom that fits the view.
pub fn frame_view_ui(ui: &mut egui::Ui, frames: &FrameStack, zoom: &mut f32, fit: bool) {
    let video = &frames.video;
    if fit {
        // The bar above the frames takes about two rows.
        let available = ui.available_size() - Vec2::new(0.0, 3.0 * ui.spacing().interact_size.y);
        *zoom = fit_zoom(available, video);
    }
    let [height, width] = video.frame_size();
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{} frames of {height} x {width}, {} channels: {}",
            video.num_frames(),
            video.num_channels(),
            frames.mapping.describe(video.num_channels())
        ));
        ui.separator();
        ui.add(egui::Slider::new(zoom, ZOOM_RANGE).logarithmic(true).suffix(" pt/px").text("Zoom"));
        if ui.button("Fit").on_hover_text("Zoom so that every frame fits the view").clicked() {
            *zoom = fit_zoom(ui.available_size(), video);
        }
    });
    ui.separator();

    let scroll = egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
        ui.spacing_mut().item_spacing = Vec2::splat(FRAME_GAP);
        ui.horizontal_wrapped(|ui| {
            for (frame_idx, texture) in frames.textures.iter().enumerate() {
                ui.vertical(|ui| {
                    ui.label(format!("frame {frame_idx}"));
                    let size = Vec2::new(width as f32, height as f32) * *zoom;
                    let response = ui.add(egui::Image::from_texture(SizedTexture::new(texture.id(), size)));
                    if let Some(pointer) = response.hover_pos() {
                        let local = (pointer - response.rect.min) / *zoom;
                        let (x, y) = (local.x.floor() as usize, local.y.floor() as usize);
                        if x < width && y < height {
                            response.on_hover_text_at_pointer(hover_text(video, frame_idx, x, y));
                        }
                    }
                });
            }
        });
    });

    let over_frames = ui.rect_contains_pointer(scroll.inner_rect);
    let zoom_delta = ui.input(egui::InputState::zoom_delta);
    if over_frames && (zoom_delta - 1.0).abs() > f32::EPSILON {
        *zoom = (*zoom * zoom_delta).clamp(*ZOOM_RANGE.start(), *ZOOM_RANGE.end());
    }
}

/// The largest zoom at which the frames, side by side, fit in `available` points.
fn fit_zoom(available: Vec2, video: &LatentVideo) -> f32 {
    let [height, width] = video.frame_size();
    let frames = video.num_frames().max(1) as f32;
    let across = (available.x - FRAME_GAP * (frames + 1.0)) / (frames * width.max(1) as f32);
    // Leave room for the frame labels and the scroll bar.
    let down = (available.y - 4.0 * FRAME_GAP) / height.max(1) as f32;
    across.min(down).floor().clamp(*ZOOM_RANGE.start(), *ZOOM_RANGE.end())
}

/// "frame f, x, y" and the first channels' values there.
fn hover_text(video: &LatentVideo, frame_idx: usize, x: usize, y: usize) -> String {
    let mut lines = vec![format!("frame {frame_idx}, x {x}, y {y}")];
    lines.extend((0..video.num_channels().min(MAX_HOVER_CHANNELS)).filter_map(|channel_idx| {
        video.value(channel_idx, frame_idx, y, x).map(|value| format!("c{channel_idx}: {value:+.4}"))
    }));
    let hidden = video.num_channels().saturating_sub(MAX_HOVER_CHANNELS);
    if hidden > 0 {
        lines.push(format!("(+{hidden} more channels)"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hover_text_names_the_pixel_and_its_first_channels() {
        let video = LatentVideo::new([5, 1, 1, 1], vec![0.5, -1.0, 2.0, 0.0, 9.0]).unwrap();
        assert_eq!(
            hover_text(&video, 0, 0, 0),
            "frame 0, x 0, y 0\nc0: +0.5000\nc1: -1.0000\nc2: +2.0000\nc3: +0.0000\n(+1 more channels)"
        );
    }

    #[test]
    fn fit_zoom_fits_all_frames_across() {
        let video = LatentVideo::new([1, 3, 8, 8], vec![0.0; 192]).unwrap();
        let zoom = fit_zoom(Vec2::new(800.0, 800.0), &video);
        assert!(zoom * 24.0 + FRAME_GAP * 4.0 <= 800.0, "zoom {zoom}");
        assert!(zoom >= 30.0, "zoom {zoom}");
    }
}
