//! The centre view: every frame of the video at the current step in a grid that wraps to the
//! view, magnified with nearest-neighbour sampling (each tensor pixel a crisp square) or shown
//! smaller through box-filtered levels, so a 12 x 12 maze and a decoded 81 x 480 x 832 video
//! both fit.

use egui::Vec2;

use serde::{Deserialize, Serialize};

use super::command::AppCommand;
use super::frame_grid::{FrameGrid, ZOOM_RANGE, fit_zoom, zoom_about};
use super::frame_levels::FrameLevels;
use super::frame_player::FramePlayer;
use super::gpu::{GpuTensor, ImageStyle};
use super::step_view::StepView;
use super::view::{Cursor, View, ViewContext, ViewEvent, restore_saved, to_saved};

/// Channels listed in the hover read-out; the rest are counted.
const MAX_HOVER_CHANNELS: usize = 4;

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

/// What the Frames tab remembers between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct FramesState {
    /// Every frame in a grid, or one frame at a time along the video.
    play_video: bool,
    /// Screen points per tensor pixel in the grid.
    zoom: f32,
    player: FramePlayer,
}

impl Default for FramesState {
    fn default() -> Self {
        Self { play_video: false, zoom: 12.0, player: FramePlayer::default() }
    }
}

/// The Frames tab: every frame of the cursor's tensor at the cursor's step.
#[derive(Debug)]
pub struct FramesView {
    state: FramesState,
    /// Fit the zoom to the view at the next draw that has frames (a new document, or a switch
    /// to or from the decoded video, which is larger than the latents).
    fit_pending: bool,
    last_view: Option<StepView>,
}

impl Default for FramesView {
    fn default() -> Self {
        Self { state: FramesState::default(), fit_pending: true, last_view: None }
    }
}

impl View for FramesView {
    fn id(&self) -> &'static str {
        "frames"
    }

    fn title(&self) -> &'static str {
        "Frames"
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        let Cursor { seed_idx, step_idx, view } = cx.cursor;
        if self.last_view.is_some_and(|last| (last == StepView::Video) != (view == StepView::Video)) {
            self.fit_pending = true;
        }
        self.last_view = Some(view);
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.state.play_video, false, "All frames")
                .on_hover_text("Every frame of the step in a grid");
            ui.selectable_value(&mut self.state.play_video, true, "Play video").on_hover_text(
                "One frame at a time along the video, the latent and decoded frames side by side",
            );
        });
        if self.state.play_video {
            self.state.player.ui(ui, cx);
            return;
        }
        let document = cx.document;
        let caches = &mut *cx.caches;
        let tensor = match document.view_owner(seed_idx, step_idx, view) {
            Some(owner) => caches.tensors.get(ui.ctx(), document, view.tensor_name(owner, step_idx)),
            None => Err(document.why_missing(seed_idx, step_idx, view).into()),
        };
        match tensor {
            Ok(tensor) => {
                let patch_size = document.manifest().patch_size;
                let fit = std::mem::take(&mut self.fit_pending);
                let zoom =
                    FrameViewZoom { zoom: &mut self.state.zoom, fit, levels: &mut caches.frame_levels };
                let overlay = (cx.overlay.click_hint, cx.overlay.marks.as_slice());
                if let Some(pointer) = frame_view_ui(ui, &tensor, patch_size, zoom, overlay) {
                    cx.commands.push(AppCommand::FramePointer(pointer));
                }
            }
            // Nothing to fit yet: the fit waits for frames to arrive.
            Err(missing) => {
                missing.show(ui);
            }
        }
    }

    fn on_event(&mut self, event: ViewEvent) {
        if let ViewEvent::DocumentShown { .. } = event {
            self.fit_pending = true;
        }
    }

    fn save_state(&self) -> Option<String> {
        to_saved(&self.state)
    }

    fn load_state(&mut self, saved: &str) {
        restore_saved(&mut self.state, saved);
    }
}

/// What the frame view is drawn with: the zoom (points per tensor pixel, persisted), whether to
/// fit it to the view first, and the down-sampled frames kept between frames.
#[derive(Debug)]
struct FrameViewZoom<'a> {
    pub zoom: &'a mut f32,
    pub fit: bool,
    pub levels: &'a mut FrameLevels,
}

/// The zoom bar, then the frames at `zoom` screen points per tensor pixel, wrapped into a grid
/// that fits the view's width. Only the frames on screen are drawn, each down-sampled on the CPU
/// to the size it is shown at when that is smaller than the frame (see [`super::frame_levels`]).
/// Ctrl + scroll zooms about the pointer, the scroll wheel and a middle- or right-button drag
/// pan, "Fit" (and `fit`) fits the whole video in the view. `patch_size` (`[t, h, w]`) names
/// the token under the pointer; `click_hint` (if any) is added to the read-out; `marks` are
/// outlined over the frames. Returns the pixel clicked or dragged over, if any.
fn frame_view_ui(
    ui: &mut egui::Ui,
    tensor: &GpuTensor,
    patch_size: [usize; 3],
    view_zoom: FrameViewZoom<'_>,
    (click_hint, marks): (Option<&str>, &[PixelMark]),
) -> Option<FramePointer> {
    let FrameViewZoom { zoom, fit, levels } = view_zoom;
    let shape = tensor.shape();
    let style = ImageStyle::default_for(tensor);
    let [_, frames, height, width] = shape;
    let label_height = ui.text_style_height(&egui::TextStyle::Body) + 2.0;
    let fit_now = zoom_bar_ui(ui, tensor, &style, zoom) || fit;

    let offset_id = ui.scope_id().with("frame_grid_offset");
    let mut pending_offset: Option<Vec2> = ui.data_mut(|data| data.remove_temp(offset_id));
    if fit_now {
        // Room for the scroll bars, should the fit land just past an edge.
        let margin = Vec2::splat(ui.spacing().scroll.allocated_width() + 2.0);
        *zoom = fit_zoom(ui.available_size() - margin, frames, [height, width], label_height);
        pending_offset = Some(Vec2::ZERO);
    }
    let zoom_now = *zoom;

    let mut clicked = None;
    let mut area = egui::ScrollArea::both().auto_shrink(false).id_salt("frame_grid");
    if let Some(offset) = pending_offset {
        area = area.scroll_offset(offset);
    }
    let scroll = area.show_viewport(ui, |ui, viewport| {
        let grid = FrameGrid::new(frames, [height, width], zoom_now, viewport.width(), label_height);
        let (content_rect, _) = ui.allocate_exact_size(grid.content_size(), egui::Sense::hover());
        let origin = content_rect.min;
        let visible = viewport.translate(origin.to_vec2());
        for frame_idx in grid.visible_frames(origin, visible) {
            let cell = grid.cell_rect(origin, frame_idx);
            let label_rect = egui::Rect::from_min_size(cell.min, Vec2::new(cell.width(), label_height));
            ui.put(label_rect, egui::Label::new(format!("frame {frame_idx}")).truncate());
            let image_rect = egui::Rect::from_min_size(label_rect.left_bottom(), grid.image_size);
            let response = ui.interact(
                image_rect,
                ui.scope_id().with(("frame", frame_idx)),
                egui::Sense::click_and_drag(),
            );
            levels.paint(ui, (tensor, frame_idx, &style), image_rect);
            let pixel_at = |pointer: egui::Pos2| {
                let local = (pointer - image_rect.min) / zoom_now;
                let (x, y) = (local.x.floor() as usize, local.y.floor() as usize);
                (local.x >= 0.0 && local.y >= 0.0 && x < width && y < height).then_some(ClickedPixel {
                    frame_idx,
                    x,
                    y,
                })
            };
            for mark in marks.iter().filter(|mark| mark.frame_idx == frame_idx) {
                let [x, y, w, h] = mark.rect.map(|v| v as f32 * zoom_now);
                let rect = egui::Rect::from_min_size(image_rect.min + Vec2::new(x, y), Vec2::new(w, h));
                ui.painter().rect_filled(rect, 0.0, mark.colour.gamma_multiply(0.6));
                ui.painter().rect_stroke(
                    rect,
                    0.0,
                    egui::Stroke::new(1.5, egui::Color32::from_rgb(255, 0, 255)),
                    egui::StrokeKind::Inside,
                );
            }
            if response.clicked() || response.dragged_by(egui::PointerButton::Primary) {
                clicked = response
                    .interact_pointer_pos()
                    .and_then(pixel_at)
                    .map(|pixel| FramePointer { pixel, clicked: response.clicked() });
            }
            if let Some(pixel) = response.hover_pos().and_then(pixel_at) {
                let [p_t, p_h, p_w] = patch_size.map(|p| p.max(1));
                let (x, y) = (pixel.x, pixel.y);
                let token = format!("token ({}, {}, {})", frame_idx / p_t, y / p_h, x / p_w);
                let mut text = format!("{}\n{token}", hover_text(shape, tensor.values(), frame_idx, x, y));
                if let Some(hint) = click_hint {
                    text = format!("{text}\n{hint}");
                }
                response.on_hover_text_at_pointer(text);
            }
        }
    });

    zoom_and_pan_input(ui, &scroll, zoom, offset_id);
    clicked
}

/// The zoom slider, "Fit", and what is shown and how (cut to the room left, whole on hover;
/// with a warning when the step holds NaN or infinite values), so that the bar never widens a
/// narrow tile. Returns whether "Fit" was clicked.
fn zoom_bar_ui(ui: &mut egui::Ui, tensor: &GpuTensor, style: &ImageStyle, zoom: &mut f32) -> bool {
    let [channels, frames, height, width] = tensor.shape();
    let fit_clicked = ui
        .horizontal(|ui| {
            ui.add(
                egui::Slider::new(zoom, ZOOM_RANGE)
                    .logarithmic(true)
                    .custom_formatter(|zoom, _| format_zoom(zoom as f32))
                    .text("Zoom"),
            )
            .on_hover_text(
                "Screen points per tensor pixel. Ctrl + scroll over the frames zooms about the pointer",
            );
            let fit = ui.button("Fit").on_hover_text("Zoom so that the whole video fits the view").clicked();
            ui.separator();
            let described = format!(
                "{frames} frames of {height} x {width}, {channels} channels: {}",
                style.describe(channels)
            );
            ui.add(egui::Label::new(&described).truncate()).on_hover_text(described);
            fit
        })
        .inner;
    let non_finite = tensor.non_finite();
    if non_finite.any() {
        ui.colored_label(ui.visuals().warn_fg_color, format!("⚠ This step holds {}.", non_finite.describe()));
    }
    ui.separator();
    fit_clicked
}

/// Ctrl + scroll over the frames zooms about the pointer; a middle- or right-button drag pans.
/// The new scroll offset applies from the next frame.
fn zoom_and_pan_input(
    ui: &egui::Ui,
    scroll: &egui::scroll_area::ScrollAreaOutput<()>,
    zoom: &mut f32,
    offset_id: egui::Id,
) {
    let Some(pointer) = ui.ctx().pointer_hover_pos().filter(|&pos| scroll.inner_rect.contains(pos)) else {
        return;
    };
    let offset = scroll.state.clamped_offset();
    let (zoom_delta, pan_delta) = ui.input(|input| {
        let panning = input.pointer.middle_down() || input.pointer.secondary_down();
        (input.zoom_delta(), if panning { input.pointer.delta() } else { Vec2::ZERO })
    });
    let mut new_offset = None;
    if (zoom_delta - 1.0).abs() > f32::EPSILON {
        let (new_zoom, offset) = zoom_about(*zoom, zoom_delta, offset, pointer - scroll.inner_rect.min);
        *zoom = new_zoom;
        new_offset = Some(offset);
    }
    if pan_delta != Vec2::ZERO {
        new_offset = Some((new_offset.unwrap_or(offset) - pan_delta).max(Vec2::ZERO));
    }
    if let Some(offset) = new_offset {
        ui.data_mut(|data| data.insert_temp(offset_id, offset));
        ui.ctx().request_repaint();
    }
}

/// A zoom as the slider shows it: "4.0 pt/px" when magnified, "1/8.0 pt/px" below one.
fn format_zoom(zoom: f32) -> String {
    if zoom >= 1.0 { format!("{zoom:.1} pt/px") } else { format!("1/{:.1} pt/px", 1.0 / zoom) }
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
}
