//! The seeds view: up to eight seeds side by side at the current step, the per-pixel
//! difference between two of them, and how far every seed is from the reference seed over all
//! steps (an `egui_plot` line per seed; click the plot to go to a step).

use std::collections::BTreeSet;

use super::step_plot::{
    clicked_step, copy_csv_button, seed_colour, seed_label, seed_legend_ui, step_grid, step_points, steps_csv,
};
use egui::Vec2;
use egui_plot::{Line, Plot, PlotPoints, VLine};
use stepscope_engine::trajectory::StepTensor;

use super::document::Document;
use super::frame_levels::FrameLevels;
use super::gpu::{self, Colormap, DifferenceReduce, GpuImage, GpuTensor, ImageStyle};
use super::stats_cache::StatsCache;
use super::step_view::StepView;
use super::tensor_cache::{NoTensor, TensorCache};
use super::view::{View, ViewCaches, ViewContext, ViewEvent};

/// The id of the seeds view, which live interventions switch to.
pub const SEEDS_VIEW_ID: &str = "seeds";

/// The most seeds shown side by side.
pub const MAX_SHOWN_SEEDS: usize = 8;
const PLOT_HEIGHT: f32 = 220.0;

/// Which seeds the view shows and compares; reset when a document opens.
#[derive(Debug, Clone, Default)]
pub struct SeedsView {
    pub shown: BTreeSet<usize>,
    /// The reference seed (A) and the one compared with it (B).
    pub pair: (usize, usize),
}

impl SeedsView {
    /// The first seeds of `num_seeds`, seed 0 against seed 1.
    #[must_use]
    pub fn for_seeds(num_seeds: usize) -> Self {
        Self {
            shown: (0..num_seeds.min(MAX_SHOWN_SEEDS)).collect(),
            pair: (0, 1.min(num_seeds.saturating_sub(1))),
        }
    }
}

impl View for SeedsView {
    fn id(&self) -> &'static str {
        SEEDS_VIEW_ID
    }

    fn title(&self) -> &'static str {
        "Compare seeds"
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        let context = (cx.cursor.view, cx.cursor.step_idx, cx.colormap);
        let clicked = seeds_view_ui(ui, cx.document, cx.caches, self, context);
        cx.commands.go_to_step(clicked);
    }

    fn on_event(&mut self, event: ViewEvent) {
        match event {
            ViewEvent::DocumentShown { num_seeds } => *self = Self::for_seeds(num_seeds),
            ViewEvent::SeedAdded { seed_idx, altered_from } => {
                if self.shown.len() < MAX_SHOWN_SEEDS {
                    self.shown.insert(seed_idx);
                }
                self.pair.1 = seed_idx;
                if let Some(parent) = altered_from {
                    self.shown.insert(parent);
                    self.pair = (parent, seed_idx);
                }
            }
        }
    }
}

/// The whole view at `step_idx`; returns a step the user clicked on the plot.
fn seeds_view_ui(
    ui: &mut egui::Ui,
    document: &Document,
    caches: &mut ViewCaches,
    seeds: &mut SeedsView,
    (view, step_idx, colormap): (StepView, usize, Colormap),
) -> Option<usize> {
    let num_seeds = document.num_seeds();
    if num_seeds < 2 {
        ui.label("This run has one seed. Fork it (live) or record several --seed values to compare them.");
        return None;
    }
    seed_picker_ui(ui, document, seeds);
    ui.separator();
    let ViewCaches { tensors, frame_levels, stats } = caches;
    let mut clicked_step = None;
    egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        egui::CollapsingHeader::new(format!("{} at step {step_idx}", view.label())).default_open(true).show(
            ui,
            |ui| {
                // Grid cells only know their own width, so the room is taken here.
                let room = ui.available_width() - ROW_RESERVED;
                let ctx = ui.ctx().clone();
                // One colour scale for every seed: the reference seed's.
                let shared_style = seed_tensor(&ctx, document, tensors, (seeds.pair.0, step_idx, view))
                    .ok()
                    .map(|tensor| ImageStyle::default_for(&tensor));
                egui::Grid::new("seed_grid").spacing(Vec2::splat(4.0)).show(ui, |ui| {
                    for &seed_idx in &seeds.shown {
                        ui.label(seed_label(seed_idx))
                            .on_hover_text(super::side_panel::seed_label(document.manifest(), seed_idx));
                        match seed_tensor(&ctx, document, tensors, (seed_idx, step_idx, view)) {
                            Ok(tensor) => {
                                frames_row_ui(ui, frame_levels, room, &tensor, shared_style.clone(), None);
                            }
                            Err(missing) => missing.show(ui),
                        }
                        ui.end_row();
                    }
                    let (a, b) = seeds.pair;
                    ui.label(format!("|{a} - {b}|"));
                    let pair = seed_tensor(&ctx, document, tensors, (a, step_idx, view))
                        .and_then(|ta| Ok((ta, seed_tensor(&ctx, document, tensors, (b, step_idx, view))?)));
                    let largest = pair.as_ref().ok().map(|(ta, tb)| tensors.largest_difference(&ctx, ta, tb));
                    match (pair, largest) {
                        (Ok((ta, tb)), Some(Some(largest))) => {
                            frames_row_ui(ui, frame_levels, room, &ta, None, Some((&tb, colormap, largest)));
                        }
                        (Ok(_), _) => NoTensor::Reading.show(ui),
                        (Err(missing), _) => missing.show(ui),
                    }
                    ui.end_row();
                });
            },
        );
        egui::CollapsingHeader::new(format!("Distance to seed {} over the steps", seeds.pair.0))
            .default_open(true)
            .show(ui, |ui| clicked_step = distance_plot_ui(ui, document, stats, seeds, step_idx));
        egui::CollapsingHeader::new("Diversity over the steps").default_open(true).show(ui, |ui| {
            if let Some(step) = diversity_plot_ui(ui, document, stats, seeds, (view, step_idx)) {
                clicked_step = Some(step);
            }
        });
    });
    clicked_step
}

fn seed_picker_ui(ui: &mut egui::Ui, document: &Document, seeds: &mut SeedsView) {
    let num_seeds = document.num_seeds();
    ui.horizontal_wrapped(|ui| {
        ui.label("Show");
        for seed_idx in 0..num_seeds {
            let mut shown = seeds.shown.contains(&seed_idx);
            let full = seeds.shown.len() >= MAX_SHOWN_SEEDS && !shown;
            if ui.add_enabled(!full, egui::Checkbox::new(&mut shown, format!("seed {seed_idx}"))).changed() {
                if shown {
                    seeds.shown.insert(seed_idx);
                } else {
                    seeds.shown.remove(&seed_idx);
                }
            }
        }
        ui.separator();
        let (a, b) = &mut seeds.pair;
        seed_combo_ui(ui, "Compare", "seed_a", a, num_seeds);
        seed_combo_ui(ui, "with", "seed_b", b, num_seeds);
    });
}

fn seed_combo_ui(ui: &mut egui::Ui, label: &str, id: &str, seed_idx: &mut usize, num_seeds: usize) {
    let label = ui.label(label);
    egui::ComboBox::from_id_salt(id)
        .selected_text(format!("seed {seed_idx}"))
        .show_ui(ui, |ui| {
            for candidate in 0..num_seeds {
                ui.selectable_value(seed_idx, candidate, format!("seed {candidate}"));
            }
        })
        .response
        .labelled_by(label.id);
}

/// `view`'s tensor of `seed_idx` at `step_idx` (from the seed it forked from, before a fork).
fn seed_tensor(
    ctx: &egui::Context,
    document: &Document,
    tensors: &mut TensorCache,
    (seed_idx, step_idx, view): (usize, usize, StepView),
) -> Result<GpuTensor, NoTensor> {
    let owner = document
        .view_owner(seed_idx, step_idx, view)
        .ok_or_else(|| format!("seed {seed_idx} has no {} at step {step_idx}", view.label()))?;
    let name = view.tensor_name(owner, step_idx);
    tensors.get(ctx, document, name)
}

/// What a row of seed thumbnails leaves to the row's label and colour bar, in points.
const ROW_RESERVED: f32 = 320.0;
/// The smallest thumbnail side; a video with more frames than fit at this size shows every
/// k-th frame (81 decoded frames in a 1280-point window show every third).
const MIN_THUMBNAIL: f32 = 24.0;

/// The frames of a `frames`-frame video that `room` points of thumbnails show (every
/// `stride`-th from frame 0), and the thumbnail width; a grid cell each, `gap` apart.
fn row_frames(frames: usize, room: f32, gap: f32) -> (usize, f32) {
    let room = room.max(MIN_THUMBNAIL);
    let fit = ((room + gap) / (MIN_THUMBNAIL + gap)).floor().max(1.0) as usize;
    let stride = frames.div_ceil(fit).max(1);
    let shown = frames.div_ceil(stride).max(1);
    let side = ((room + gap) / shown as f32 - gap).clamp(MIN_THUMBNAIL, 200.0);
    (stride, side)
}

/// One thumbnail per frame of `tensor` (sized to fill `room` points; every k-th frame where
/// all would not fit) in `style` (default: by its channel count), or of its difference from
/// `other` coloured by a map over `[0, largest difference]`.
pub fn frames_row_ui(
    ui: &mut egui::Ui,
    levels: &mut FrameLevels,
    room: f32,
    tensor: &GpuTensor,
    style: Option<ImageStyle>,
    other: Option<(&GpuTensor, Colormap, f32)>,
) {
    let [_, frames, height, width] = tensor.shape();
    let (stride, side) = row_frames(frames, room, ui.spacing().item_spacing.x.max(4.0));
    let size = Vec2::new(width as f32, height as f32) * (side / width.max(1) as f32);
    let hover = |frame_idx: usize| {
        if stride > 1 {
            format!("frame {frame_idx} (every {stride}th frame shown: widen the view for all)")
        } else {
            format!("frame {frame_idx}")
        }
    };
    let Some((other, map, largest)) = other else {
        let style = style.unwrap_or_else(|| ImageStyle::default_for(tensor));
        for frame_idx in (0..frames).step_by(stride) {
            let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
            levels.paint(ui, (tensor, frame_idx, &style), rect);
            response.on_hover_text(hover(frame_idx));
        }
        return;
    };
    if tensor.is_frames_only() || other.is_frames_only() {
        ui.label("not drawn: tensors this large are read a frame at a time, not whole");
        return;
    }
    let range = [0.0, largest.max(1e-6)];
    let style = ImageStyle::Difference { other: other.clone(), reduce: DifferenceReduce::Max, map, range };
    for frame_idx in (0..frames).step_by(stride) {
        if let Some(image) = GpuImage::new(tensor.clone(), frame_idx, style.clone()) {
            gpu::image_ui(ui, image, size).on_hover_text(hover(frame_idx));
        }
    }
    gpu::colormap_legend_ui(ui, map, range);
}

/// Returns the step the user clicked.
fn distance_plot_ui(
    ui: &mut egui::Ui,
    document: &Document,
    stats: &mut StatsCache,
    seeds: &SeedsView,
    step_idx: usize,
) -> Option<usize> {
    let reference = seeds.pair.0;
    let distances = stats.seed_distances(document, reference, StepTensor::X0).or_show(ui)?;
    ui.horizontal(|ui| {
        seed_legend_ui(ui, seeds.shown.iter().copied().filter(|&s| s != reference), &[]);
        copy_csv_button(ui, || {
            let series: Vec<(String, Vec<Option<f64>>)> = seeds
                .shown
                .iter()
                .filter(|&&s| s != reference)
                .filter_map(|&s| {
                    Some((
                        format!("seed {s} distance to seed {reference}"),
                        distances.per_seed.get(s)?.clone(),
                    ))
                })
                .collect();
            steps_csv(&series)
        });
    });
    let response = Plot::new("seed_distance_plot")
        .height(PLOT_HEIGHT)
        .x_grid_spacer(step_grid())
        .x_axis_label("step")
        .y_axis_label(format!("RMS distance of x0_hat to seed {reference}"))
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            for &seed_idx in seeds.shown.iter().filter(|&&s| s != reference) {
                let Some(row) = distances.per_seed.get(seed_idx) else { continue };
                let points = step_points(row);
                let line = Line::new(format!("seed {seed_idx}"), PlotPoints::from(points));
                plot_ui.line(line.width(2.0).color(seed_colour(seed_idx)));
            }
            plot_ui.vline(VLine::new("current step", step_idx as f64).width(1.0));
            plot_ui.pointer_coordinate()
        });
    clicked_step(&response, document.num_steps())
}

/// The diversity of the predictions over the steps: the mean distance between seeds, and each
/// shown seed's change since the step before. Returns the step clicked, if any.
fn diversity_plot_ui(
    ui: &mut egui::Ui,
    document: &Document,
    stats: &mut StatsCache,
    seeds: &SeedsView,
    (view, step_idx): (StepView, usize),
) -> Option<usize> {
    // Decoded videos exist at a few steps only: the curves follow x0_hat then.
    let diversity = stats.diversity(document, view.step_tensor().unwrap_or(StepTensor::X0)).or_show(ui)?;
    let line = |name: String, values: &[Option<f64>]| Line::new(name, PlotPoints::from(step_points(values)));
    let between = ui.visuals().strong_text_color();
    ui.label("Dashed: each seed's change since the step before.");
    ui.horizontal(|ui| {
        seed_legend_ui(ui, seeds.shown.iter().copied(), &[("between seeds (mean over pairs)", between)]);
        copy_csv_button(ui, || {
            let mut series = vec![("between seeds".to_owned(), diversity.between_seeds.clone())];
            series.extend(seeds.shown.iter().filter_map(|&s| {
                Some((
                    format!("seed {s} change since the step before"),
                    diversity.step_change.get(s)?.clone(),
                ))
            }));
            steps_csv(&series)
        });
    });
    let response = Plot::new("diversity_plot")
        .height(PLOT_HEIGHT)
        .x_grid_spacer(step_grid())
        .x_axis_label("step")
        .y_axis_label(format!("RMS of {}", view.label()))
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            plot_ui.line(
                line("between seeds (mean over pairs)".to_owned(), &diversity.between_seeds)
                    .width(3.0)
                    .color(between),
            );
            for &seed_idx in &seeds.shown {
                let Some(row) = diversity.step_change.get(seed_idx) else { continue };
                plot_ui.line(
                    line(format!("seed {seed_idx}: change since the step before"), row)
                        .width(1.5)
                        .color(seed_colour(seed_idx))
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
            plot_ui.vline(VLine::new("current step", step_idx as f64).width(1.0));
            plot_ui.pointer_coordinate()
        });
    clicked_step(&response, document.num_steps())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_every_frame_that_fits_and_a_stride_beyond() {
        // Three frames: all, as large as the room allows, up to 200 points.
        assert_eq!(row_frames(3, 280.0, 4.0), (1, (280.0 + 4.0) / 3.0 - 4.0));
        assert_eq!(row_frames(3, 2000.0, 4.0), (1, 200.0));
        // 81 decoded frames in 640 points: 23 thumbnails of 24 + 4 points fit.
        let (stride, side) = row_frames(81, 640.0, 4.0);
        assert_eq!(stride, 4);
        assert!(81usize.div_ceil(stride) as f32 * (side + 4.0) <= 640.0 + 4.0 + 1e-3, "fits");
        // A row with no room still shows frame 0.
        assert_eq!(row_frames(5, -100.0, 4.0).0, 5);
    }
}
