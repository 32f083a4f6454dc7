//! Chain-of-Steps at a glance: the figure the papers draw. Steps down and frames across for
//! one seed (each row the prediction at that step, labelled with its step and sigma), or seeds
//! down and steps across for one chosen frame. Strides thin long runs and long videos; a click
//! on a picture moves the cursor there. Only the rows on screen are read and drawn, each frame
//! down-sampled to its cell.

use egui::{Color32, Rect, Stroke, StrokeKind, Vec2};
use serde::{Deserialize, Serialize};

use super::command::AppCommand;
use super::document::Document;
use super::gpu::{GpuTensor, ImageStyle};
use super::step_plot::seed_colour;
use super::step_view::StepView;
use super::tensor_cache::NoTensor;
use super::time_control::TimeCommand;
use super::view::{Cursor, View, ViewCaches, ViewContext, restore_saved, to_saved};

/// Width of the row labels, in points.
const LABEL_WIDTH: f32 = 96.0;
/// Gap between pictures, in points.
const GAP: f32 = 3.0;
/// The narrowest picture the automatic frame stride allows, in points.
const MIN_CELL_WIDTH: f32 = 56.0;
/// Pictures are not made smaller than this to fit every row, in points.
const MIN_ROW_HEIGHT: f32 = 40.0;
/// The column labels' row, in points.
const HEADER_HEIGHT: f32 = 16.0;

/// Which grid the view draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
enum ChainLayout {
    /// One seed: a row per step, a column per frame.
    #[default]
    StepsByFrames,
    /// One frame: a row per seed, a column per step.
    SeedsBySteps,
}

/// What the view remembers between sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct ChainState {
    layout: ChainLayout,
    /// Every how many frames a column is drawn; 0 picks the stride that fits the view.
    frame_stride: usize,
    /// Every how many steps a row (or column) is drawn; 0 picks the stride that fits the view.
    step_stride: usize,
    /// The frame of the seeds x steps grid (clamped to the video: the last frame by default,
    /// where a task's answer is).
    frame_idx: usize,
}

impl Default for ChainState {
    fn default() -> Self {
        Self { layout: ChainLayout::default(), frame_stride: 0, step_stride: 0, frame_idx: usize::MAX }
    }
}

/// The "Steps x frames" tab.
#[derive(Debug, Default)]
pub struct ChainView {
    state: ChainState,
}

impl View for ChainView {
    fn id(&self) -> &'static str {
        "chain"
    }

    fn title(&self) -> &'static str {
        "Steps x frames"
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        let [frames, _, _] = video_shape(cx.document, cx.cursor.view);
        self.state.frame_idx = self.state.frame_idx.min(frames.saturating_sub(1));
        controls_ui(ui, &mut self.state, frames);
        ui.separator();
        let state = self.state;
        let num_steps = cx.document.num_steps();
        let across = ui.available_width() - LABEL_WIDTH;
        let step_stride = match (state.step_stride, state.layout) {
            // Steps down: every step row shows at once where it can.
            (0, ChainLayout::StepsByFrames) => {
                auto_stride(num_steps, ui.available_height() - HEADER_HEIGHT, MIN_ROW_HEIGHT)
            }
            // Steps across: columns stay readable.
            (0, ChainLayout::SeedsBySteps) => auto_stride(num_steps, across, MIN_CELL_WIDTH),
            (stride, _) => stride,
        };
        let steps: Vec<usize> = (0..num_steps).step_by(step_stride).collect();
        match state.layout {
            ChainLayout::StepsByFrames => {
                let frame_stride = match state.frame_stride {
                    0 => auto_stride(frames, across, MIN_CELL_WIDTH),
                    stride => stride,
                };
                let columns: Vec<usize> = (0..frames).step_by(frame_stride).collect();
                steps_by_frames_ui(ui, cx, &steps, &columns);
            }
            ChainLayout::SeedsBySteps => seeds_by_steps_ui(ui, cx, &steps, state.frame_idx),
        }
    }

    fn save_state(&self) -> Option<String> {
        to_saved(&self.state)
    }

    fn load_state(&mut self, saved: &str) {
        restore_saved(&mut self.state, saved);
    }
}

/// The layout, the strides and (seeds x steps) the frame.
fn controls_ui(ui: &mut egui::Ui, state: &mut ChainState, frames: usize) {
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut state.layout, ChainLayout::StepsByFrames, "Steps x frames (this seed)");
        ui.selectable_value(&mut state.layout, ChainLayout::SeedsBySteps, "Seeds x steps (one frame)");
        ui.separator();
        stride_ui(ui, "Step stride", &mut state.step_stride, 100)
            .on_hover_text("Every how many steps a row (or column) is drawn; auto fits the view");
        match state.layout {
            ChainLayout::StepsByFrames => {
                stride_ui(ui, "Frame stride", &mut state.frame_stride, frames.max(1))
                    .on_hover_text("Every how many frames a column is drawn; auto fits the view");
            }
            ChainLayout::SeedsBySteps => {
                let label = ui.label("Frame");
                ui.add(egui::DragValue::new(&mut state.frame_idx).range(0..=frames.saturating_sub(1)))
                    .labelled_by(label.id);
            }
        }
    });
}

/// `[F, H, W]` of the cursor's view of `document`: the decoded video's where it is shown, else
/// the latents'.
fn video_shape(document: &Document, view: StepView) -> [usize; 3] {
    if let (StepView::Video, Some(video)) = (view, &document.manifest().video) {
        return [video.shape[1], video.shape[2], video.shape[3]];
    }
    let [_, frames, height, width] = document.manifest().latent_shape;
    [frames, height, width]
}

/// A labelled stride field where 0 reads "auto".
fn stride_ui(ui: &mut egui::Ui, label: &str, stride: &mut usize, max: usize) -> egui::Response {
    let label = ui.label(label);
    let field = egui::DragValue::new(stride)
        .range(0..=max)
        .custom_formatter(|stride, _| if stride < 1.0 { "auto".to_owned() } else { format!("{stride}") });
    ui.add(field).labelled_by(label.id)
}

/// The smallest stride at which every one of `count` cells kept gets at least `min_cell` points
/// (plus a gap) of `space`.
fn auto_stride(count: usize, space: f32, min_cell: f32) -> usize {
    let fitting = ((space + GAP) / (min_cell + GAP)).floor().max(1.0) as usize;
    count.div_ceil(fitting).max(1)
}

/// One seed's prediction: a row per step in `steps`, a column per frame in `columns`.
fn steps_by_frames_ui(ui: &mut egui::Ui, cx: &mut ViewContext<'_>, steps: &[usize], columns: &[usize]) {
    let Cursor { seed_idx, step_idx: cursor_step, view } = cx.cursor;
    let [_, height, width] = video_shape(cx.document, view);
    let cell = cell_size(ui.available_size(), [columns.len(), steps.len()], [height, width]);
    header_ui(ui, columns.iter().map(|frame_idx| format!("frame {frame_idx}")), cell.x);
    let sigmas = &cx.document.manifest().schedule.sigmas;
    egui::ScrollArea::vertical().auto_shrink(false).show_rows(ui, cell.y + GAP, steps.len(), |ui, rows| {
        // Each row is exactly a picture and a gap tall, as `show_rows` and `cell_size` assume.
        ui.spacing_mut().item_spacing.y = 0.0;
        for &step_idx in &steps[rows] {
            let sigma = sigmas.get(step_idx).copied().unwrap_or(f64::NAN);
            let label = format!("step {step_idx}\nσ {sigma:.3}");
            let tensor = step_tensor(ui.ctx(), cx.document, cx.caches, (seed_idx, step_idx, view));
            let cells = columns.iter().map(|&frame_idx| PictureAt {
                frame_idx,
                current: step_idx == cursor_step,
                name: format!("step {step_idx}, frame {frame_idx}"),
            });
            if row_ui(ui, cx.caches, (&label, tensor.as_ref()), cells, cell) {
                cx.commands.push(AppCommand::Time(TimeCommand::SetStep(step_idx)));
            }
        }
    });
}

/// One frame over the run: a row per seed, a column per step in `steps`.
fn seeds_by_steps_ui(ui: &mut egui::Ui, cx: &mut ViewContext<'_>, steps: &[usize], frame_idx: usize) {
    let Cursor { seed_idx: cursor_seed, step_idx: cursor_step, view } = cx.cursor;
    let [_, height, width] = video_shape(cx.document, view);
    let cell = cell_size(ui.available_size(), [steps.len(), cx.document.num_seeds()], [height, width]);
    header_ui(ui, steps.iter().map(|step_idx| format!("step {step_idx}")), cell.x);
    egui::ScrollArea::vertical().auto_shrink(false).show_rows(
        ui,
        cell.y + GAP,
        cx.document.num_seeds(),
        |ui, rows| {
            ui.spacing_mut().item_spacing.y = 0.0;
            for seed_idx in rows {
                let label = egui::RichText::new(format!("■ seed {seed_idx}\nframe {frame_idx}"))
                    .color(seed_colour(seed_idx));
                ui.horizontal(|ui| {
                    ui.spacing_mut().item_spacing = Vec2::splat(GAP);
                    let (label_rect, _) =
                        ui.allocate_exact_size(Vec2::new(LABEL_WIDTH, cell.y), egui::Sense::hover());
                    ui.put(label_rect, egui::Label::new(label).wrap_mode(egui::TextWrapMode::Extend));
                    for &step_idx in steps {
                        let tensor =
                            step_tensor(ui.ctx(), cx.document, cx.caches, (seed_idx, step_idx, view));
                        let at = PictureAt {
                            frame_idx,
                            current: seed_idx == cursor_seed && step_idx == cursor_step,
                            name: format!("seed {seed_idx}, step {step_idx}"),
                        };
                        if picture_ui(ui, cx.caches, tensor.as_ref(), at, cell) {
                            cx.commands.push(AppCommand::SelectSeed(seed_idx));
                            cx.commands.push(AppCommand::Time(TimeCommand::SetStep(step_idx)));
                        }
                    }
                });
                ui.add_space(GAP);
            }
        },
    );
}

/// The picture size for a grid of `[columns, rows]` pictures of `[H, W]` in `available` points
/// (with the labels): as wide as the columns allow, and no taller than lets every row show at
/// once, unless that is below [`MIN_ROW_HEIGHT`] (then the rows scroll).
fn cell_size(available: Vec2, [columns, rows]: [usize; 2], [height, width]: [usize; 2]) -> Vec2 {
    let [columns, rows] = [columns, rows].map(|n| n.max(1) as f32);
    let aspect = height.max(1) as f32 / width.max(1) as f32;
    let across = ((available.x - LABEL_WIDTH - GAP * columns) / columns).max(8.0);
    // One more gap than rows, for the header's own spacing.
    let down = ((available.y - HEADER_HEIGHT - GAP * (rows + 2.0)) / rows).max(MIN_ROW_HEIGHT);
    let cell_height = (across * aspect).min(down);
    Vec2::new(cell_height / aspect, cell_height)
}

/// Column labels above the grid.
fn header_ui(ui: &mut egui::Ui, labels: impl Iterator<Item = String>, cell_width: f32) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing = Vec2::splat(GAP);
        ui.add_space(LABEL_WIDTH);
        for label in labels {
            let (rect, _) =
                ui.allocate_exact_size(Vec2::new(cell_width, HEADER_HEIGHT), egui::Sense::hover());
            ui.put(rect, egui::Label::new(egui::RichText::new(label).small()).truncate());
        }
    });
}

/// One picture of the grid: a frame, whether it is at the cursor, and its accessible name.
#[derive(Debug)]
struct PictureAt {
    frame_idx: usize,
    current: bool,
    name: String,
}

/// A labelled row of pictures. Returns whether one was clicked.
fn row_ui(
    ui: &mut egui::Ui,
    caches: &mut ViewCaches,
    (label, tensor): (&str, Result<&GpuTensor, &NoTensor>),
    cells: impl Iterator<Item = PictureAt>,
    cell: Vec2,
) -> bool {
    let mut clicked = false;
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing = Vec2::splat(GAP);
        let (label_rect, _) = ui.allocate_exact_size(Vec2::new(LABEL_WIDTH, cell.y), egui::Sense::hover());
        ui.put(label_rect, egui::Label::new(label).wrap_mode(egui::TextWrapMode::Extend));
        for at in cells {
            clicked |= picture_ui(ui, caches, tensor, at, cell);
        }
    });
    ui.add_space(GAP);
    clicked
}

/// One picture (or why it is missing), outlined when it is at the cursor; returns whether it
/// was clicked.
fn picture_ui(
    ui: &mut egui::Ui,
    caches: &mut ViewCaches,
    tensor: Result<&GpuTensor, &NoTensor>,
    PictureAt { frame_idx, current, name }: PictureAt,
    cell: Vec2,
) -> bool {
    let (rect, response) = ui.allocate_exact_size(cell, egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
    if !ui.is_rect_visible(rect) {
        return response.clicked();
    }
    match tensor {
        Ok(tensor) => {
            let style = ImageStyle::default_for(tensor);
            caches.frame_levels.paint(ui, (tensor, frame_idx, &style), rect);
        }
        Err(message) => {
            ui.painter().rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
            let response = ui.interact(rect, response.id.with("missing"), egui::Sense::hover());
            response.on_hover_text(message.to_string());
        }
    }
    if current {
        outline(ui, rect, ui.visuals().selection.stroke.color);
    }
    response.clicked()
}

fn outline(ui: &egui::Ui, rect: Rect, colour: Color32) {
    ui.painter().rect_stroke(rect, 0.0, Stroke::new(2.0, colour), StrokeKind::Outside);
}

/// The tensor of `view` for `seed_idx` at `step_idx`, or why there is none.
fn step_tensor(
    ctx: &egui::Context,
    document: &Document,
    caches: &mut ViewCaches,
    (seed_idx, step_idx, view): (usize, usize, StepView),
) -> Result<GpuTensor, NoTensor> {
    let Some(owner) = document.view_owner(seed_idx, step_idx, view) else {
        return Err(document.why_missing(seed_idx, step_idx, view).into());
    };
    caches.tensors.get(ctx, document, view.tensor_name(owner, step_idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_frame_stride_keeps_columns_readable() {
        // 81 decoded frames in 900 points: 15 columns of at least 56 pt fit, so every 6th frame.
        assert_eq!(auto_stride(81, 900.0, MIN_CELL_WIDTH), 6);
        // A 5-frame maze fits whole.
        assert_eq!(auto_stride(5, 900.0, MIN_CELL_WIDTH), 1);
        assert_eq!(auto_stride(0, 900.0, MIN_CELL_WIDTH), 1);
        assert_eq!(auto_stride(3, 0.0, MIN_CELL_WIDTH), 3, "no room: one column");
        // 20 steps down 600 points at rows of at least 40: 13 fit, so every 2nd step.
        assert_eq!(auto_stride(20, 600.0, MIN_ROW_HEIGHT), 2);
    }

    #[test]
    fn cells_keep_the_frames_aspect_and_fit_the_view() {
        // 8 columns of decoded frames, 4 rows: the width decides.
        let cell = cell_size(Vec2::new(1000.0, 2000.0), [8, 4], [480, 832]);
        assert!((cell.y / cell.x - 480.0 / 832.0).abs() < 1e-5);
        assert!((LABEL_WIDTH + 8.0 * (cell.x + GAP) - 1000.0).abs() < 1e-3, "{cell:?}");
        // 10 steps of a 5-frame maze in 600 points: the height decides, every row shows.
        let cell = cell_size(Vec2::new(1000.0, 600.0), [5, 10], [14, 14]);
        assert!((HEADER_HEIGHT + 10.0 * (cell.y + GAP) + 2.0 * GAP - 600.0).abs() < 1e-3, "{cell:?}");
        // 50 steps cannot all show at 40 points: the rows keep 40 and scroll.
        let cell = cell_size(Vec2::new(1000.0, 600.0), [5, 50], [14, 14]);
        assert!((cell.y - MIN_ROW_HEIGHT).abs() < 1e-6, "{cell:?}");
    }
}
