//! The centre view: every frame of the video at the current step, side by side, wrapping into
//! a grid, scaled up with nearest-neighbour sampling so that each latent pixel stays a crisp
//! square.

use egui::{Vec2, load::SizedTexture};

use super::frame_cache::FrameStack;
use super::gpu::{self, GpuImage, GpuTensor, ImageStyle};

/// Screen points per latent pixel the zoom allows.
pub const ZOOM_RANGE: std::ops::RangeInclusive<f32> = 1.0..=64.0;

/// Channels listed in the hover read-out; the rest are counted.
const MAX_HOVER_CHANNELS: usize = 4;

/// Gap between frames, in points.
const FRAME_GAP: f32 = 8.0;

/// One step's frames, ready to draw: on the GPU through the latent-to-RGB shader, or as
/// textures mapped on the CPU where the GPU path is unavailable.
#[derive(Debug, Clone, Copy)]
pub enum FramePictures<'a> {
    Gpu(&'a GpuTensor),
    Textures(&'a FrameStack),
}

impl FramePictures<'_> {
    /// `[C, F, H, W]`.
    fn shape(&self) -> [usize; 4] {
        match self {
            Self::Gpu(tensor) => tensor.shape(),
            Self::Textures(stack) => stack.video.shape,
        }
    }

    fn values(&self) -> &[f32] {
        match self {
            Self::Gpu(tensor) => tensor.values(),
            Self::Textures(stack) => &stack.video.values,
        }
    }

    fn describe_colours(&self) -> String {
        let channels = self.shape()[0];
        match self {
            Self::Gpu(tensor) => match ImageStyle::default_for(tensor) {
                ImageStyle::Wan21Latent => "Wan2.1 latents to RGB (ComfyUI's factors, on the GPU)".to_owned(),
                ImageStyle::Wan22Latent => "Wan2.2 latents to RGB (ComfyUI's factors, on the GPU)".to_owned(),
                ImageStyle::Pixels => "RGB pixels, (x + 1) / 2".to_owned(),
                _ => super::latent_rgb::RgbMapping::NormalisedChannels.describe(channels),
            },
            Self::Textures(stack) => stack.mapping.describe(channels),
        }
    }
}

/// A rectangle of latent pixels to outline over a frame (e.g. painted tokens), filled with
/// `colour` at low opacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelMark {
    pub frame_idx: usize,
    /// `[x, y, width, height]` in latent pixels.
    pub rect: [usize; 4],
    pub colour: egui::Color32,
}

/// The pointer on a frame pixel, pressed: a click, or a drag in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePointer {
    pub pixel: ClickedPixel,
    /// A click (press and release without moving), rather than a drag.
    pub clicked: bool,
}

/// A latent pixel the user clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickedPixel {
    pub frame_idx: usize,
    pub x: usize,
    pub y: usize,
}

impl ClickedPixel {
    /// The flat index of this pixel's token in the token grid of a `[C, F, H, W]` latent cut
    /// into `patch_size` (`[t, h, w]`) patches; `None` outside the grid.
    #[must_use]
    pub fn token(self, [_, frames, height, width]: [usize; 4], patch_size: [usize; 3]) -> Option<usize> {
        let [p_t, p_h, p_w] = patch_size.map(|p| p.max(1));
        let grid = [frames / p_t, height / p_h, width / p_w];
        let (f, r, c) = (self.frame_idx / p_t, self.y / p_h, self.x / p_w);
        (f < grid[0] && r < grid[1] && c < grid[2]).then(|| (f * grid[1] + r) * grid[2] + c)
    }
}

/// The zoom bar, then the frames at `zoom` screen points per latent pixel. Ctrl + scroll over
/// the frames zooms too; `fit` first sets the zoom that fits the view. `patch_size`
/// (`[t, h, w]`) names the token under the pointer; `click_hint` (if any) is added to the
/// read-out; `marks` are outlined over the frames. Returns the pixel clicked or dragged over,
/// if any.
pub fn frame_view_ui(
    ui: &mut egui::Ui,
    pictures: FramePictures<'_>,
    patch_size: [usize; 3],
    (zoom, fit): (&mut f32, bool),
    (click_hint, marks): (Option<&str>, &[PixelMark]),
) -> Option<FramePointer> {
    let shape = pictures.shape();
    let [channels, frames, height, width] = shape;
    if fit {
        // The bar above the frames takes about two rows.
        let available = ui.available_size() - Vec2::new(0.0, 3.0 * ui.spacing().interact_size.y);
        *zoom = fit_zoom(available, shape);
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{frames} frames of {height} x {width}, {channels} channels: {}",
            pictures.describe_colours()
        ));
        ui.separator();
        ui.add(egui::Slider::new(zoom, ZOOM_RANGE).logarithmic(true).suffix(" pt/px").text("Zoom"));
        if ui.button("Fit").on_hover_text("Zoom so that every frame fits the view").clicked() {
            *zoom = fit_zoom(ui.available_size(), shape);
        }
    });
    ui.separator();

    let mut clicked = None;
    let scroll = egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
        ui.spacing_mut().item_spacing = Vec2::splat(FRAME_GAP);
        ui.horizontal_wrapped(|ui| {
            for frame_idx in 0..frames {
                ui.vertical(|ui| {
                    ui.label(format!("frame {frame_idx}"));
                    let size = Vec2::new(width as f32, height as f32) * *zoom;
                    let response = match pictures {
                        FramePictures::Gpu(tensor) => {
                            let style = ImageStyle::default_for(tensor);
                            let Some(image) = GpuImage::new(tensor.clone(), frame_idx, style) else { return };
                            gpu::image_ui_sensing(ui, image, size, egui::Sense::click_and_drag())
                        }
                        FramePictures::Textures(stack) => {
                            let Some(texture) = stack.textures.get(frame_idx) else { return };
                            let image = egui::Image::from_texture(SizedTexture::new(texture.id(), size));
                            ui.add(image.sense(egui::Sense::click_and_drag()))
                        }
                    };
                    let pixel_at = |pointer: egui::Pos2| {
                        let local = (pointer - response.rect.min) / *zoom;
                        let (x, y) = (local.x.floor() as usize, local.y.floor() as usize);
                        (x < width && y < height).then_some(ClickedPixel { frame_idx, x, y })
                    };
                    for mark in marks.iter().filter(|mark| mark.frame_idx == frame_idx) {
                        let [x, y, w, h] = mark.rect.map(|v| v as f32 * *zoom);
                        let rect =
                            egui::Rect::from_min_size(response.rect.min + Vec2::new(x, y), Vec2::new(w, h));
                        ui.painter().rect_filled(rect, 0.0, mark.colour.gamma_multiply(0.6));
                        ui.painter().rect_stroke(
                            rect,
                            0.0,
                            egui::Stroke::new(1.5, egui::Color32::from_rgb(255, 0, 255)),
                            egui::StrokeKind::Inside,
                        );
                    }
                    if response.clicked() || response.dragged() {
                        clicked = response
                            .interact_pointer_pos()
                            .and_then(pixel_at)
                            .map(|pixel| FramePointer { pixel, clicked: response.clicked() });
                    }
                    if let Some(pixel) = response.hover_pos().and_then(pixel_at) {
                        let [p_t, p_h, p_w] = patch_size.map(|p| p.max(1));
                        let (x, y) = (pixel.x, pixel.y);
                        let token = format!("token ({}, {}, {})", frame_idx / p_t, y / p_h, x / p_w);
                        let mut text =
                            format!("{}\n{token}", hover_text(shape, pictures.values(), frame_idx, x, y));
                        if let Some(hint) = click_hint {
                            text = format!("{text}\n{hint}");
                        }
                        response.on_hover_text_at_pointer(text);
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
    clicked
}

/// The largest zoom at which the frames of a `[C, F, H, W]` tensor, side by side, fit in
/// `available` points.
fn fit_zoom(available: Vec2, [_, frames, height, width]: [usize; 4]) -> f32 {
    let frames = frames.max(1) as f32;
    let across = (available.x - FRAME_GAP * (frames + 1.0)) / (frames * width.max(1) as f32);
    // Leave room for the frame labels and the scroll bar.
    let down = (available.y - 4.0 * FRAME_GAP) / height.max(1) as f32;
    across.min(down).floor().clamp(*ZOOM_RANGE.start(), *ZOOM_RANGE.end())
}

/// "frame f, x, y" and the first channels' values there, in a `[C, F, H, W]` tensor.
fn hover_text(shape: [usize; 4], values: &[f32], frame_idx: usize, x: usize, y: usize) -> String {
    let [channels, frames, height, width] = shape;
    let mut lines = vec![format!("frame {frame_idx}, x {x}, y {y}")];
    lines.extend((0..channels.min(MAX_HOVER_CHANNELS)).filter_map(|channel_idx| {
        values
            .get(((channel_idx * frames + frame_idx) * height + y) * width + x)
            .map(|value| format!("c{channel_idx}: {value:+.4}"))
    }));
    let hidden = channels.saturating_sub(MAX_HOVER_CHANNELS);
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
        let values = [0.5, -1.0, 2.0, 0.0, 9.0];
        assert_eq!(
            hover_text([5, 1, 1, 1], &values, 0, 0, 0),
            "frame 0, x 0, y 0\nc0: +0.5000\nc1: -1.0000\nc2: +2.0000\nc3: +0.0000\n(+1 more channels)"
        );
    }

    #[test]
    fn a_clicked_pixel_names_its_token() {
        let shape = [16, 5, 12, 20];
        let pixel = ClickedPixel { frame_idx: 3, x: 7, y: 5 };
        // 1x2x2 patches: a 5 x 6 x 10 grid, token (3, 2, 3).
        assert_eq!(pixel.token(shape, [1, 2, 2]), Some((3 * 6 + 2) * 10 + 3));
        // 4x4x4 patches leave a 1 x 3 x 5 grid: frame 3 is in temporal patch 0.
        assert_eq!(pixel.token(shape, [4, 4, 4]), Some(5 + 1));
        // Frame 4 is past the last whole temporal patch.
        assert_eq!(ClickedPixel { frame_idx: 4, ..pixel }.token(shape, [4, 4, 4]), None);
    }

    #[test]
    fn fit_zoom_fits_all_frames_across() {
        let zoom = fit_zoom(Vec2::new(800.0, 800.0), [1, 3, 8, 8]);
        assert!(zoom * 24.0 + FRAME_GAP * 4.0 <= 800.0, "zoom {zoom}");
        assert!(zoom >= 30.0, "zoom {zoom}");
    }
}
