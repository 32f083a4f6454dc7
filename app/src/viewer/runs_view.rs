//! The runs view: every open run side by side at the cursor, each at the step whose noise level
//! is nearest the shown run's (runs with different step counts or shifts follow different
//! schedules, so "step k" of one is not "step k" of another: sigma is what they share), the
//! mismatch in sigma written next to each, the per-pixel difference from the shown run where
//! the shapes agree, and every run's schedule in one plot.

use egui_plot::{Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::command::AppCommand;
use super::document::Document;
use super::frame_levels::FrameLevels;
use super::gpu::{Colormap, GpuTensor, ImageStyle};
use super::open_runs::ParkedRun;
use super::seeds_view::frames_row_ui;
use super::step_plot::{copy_csv_button, step_grid, steps_csv};
use super::step_view::StepView;
use super::tensor_cache::{NoTensor, TensorCache};
use super::view::{View, ViewContext, restore_saved, to_saved};

/// A sigma mismatch below this is rounding, not a different schedule (sigmas are stored as
/// f64 from the same formulas).
pub const SIGMA_TOLERANCE: f64 = 1e-6;
/// What a row of thumbnails leaves to the run's label and the difference's colour bar.
const ROW_RESERVED: f32 = 480.0;
const PLOT_HEIGHT: f32 = 180.0;

/// What the runs view remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct RunsViewState {
    /// Draw `|other - shown|` under each run of the shown run's shape.
    show_difference: bool,
}

impl Default for RunsViewState {
    fn default() -> Self {
        Self { show_difference: true }
    }
}

/// The "Compare runs" tab.
#[derive(Debug, Default)]
pub struct RunsView {
    state: RunsViewState,
}

/// The step of `sigmas` (a schedule's noise level at the start of each step) nearest `sigma`,
/// with `sigmas[step] - sigma`; `None` for an empty schedule.
#[must_use]
pub fn nearest_step_by_sigma(sigmas: &[f64], sigma: f64) -> Option<(usize, f64)> {
    sigmas
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| (*a - sigma).abs().total_cmp(&(*b - sigma).abs()))
        .map(|(step_idx, &found)| (step_idx, found - sigma))
}

/// The noise level at the start of each of `document`'s steps.
fn step_sigmas(document: &Document) -> &[f64] {
    let schedule = &document.manifest().schedule;
    &schedule.sigmas[..schedule.steps.min(schedule.sigmas.len())]
}

/// `view`'s tensor of `seed_idx` at `step_idx` in `document`, read through `tensors`.
fn run_tensor(
    ctx: &egui::Context,
    document: &Document,
    tensors: &mut TensorCache,
    (seed_idx, step_idx, view): (usize, usize, StepView),
) -> Result<GpuTensor, NoTensor> {
    let owner = document
        .view_owner(seed_idx, step_idx, view)
        .ok_or_else(|| format!("no {} for seed {seed_idx} at step {step_idx}", view.label()))?;
    tensors.get(ctx, document, view.tensor_name(owner, step_idx))
}

impl RunsView {
    /// One open run's row (and its difference row) at the step of the nearest sigma to the
    /// shown run's; returns whether its label was clicked.
    fn run_row_ui(
        &mut self,
        ui: &mut egui::Ui,
        room: f32,
        (run, levels): (&mut ParkedRun, &mut FrameLevels),
        shown: Option<(&GpuTensor, Option<ImageStyle>)>,
        (seed_idx, sigma, view, colormap): (usize, f64, StepView, Colormap),
    ) -> bool {
        let Some((run_step, mismatch)) = nearest_step_by_sigma(step_sigmas(&run.document), sigma) else {
            return false;
        };
        let run_seed = seed_idx.min(run.document.num_seeds().saturating_sub(1));
        let label =
            format!("{}\nseed {run_seed}, step {run_step}, σ {:.4}", run.document.title(), sigma + mismatch);
        // One grid cell: the run, and its sigma mismatch under it.
        let clicked = ui
            .vertical(|ui| {
                let label = ui.add(egui::Label::new(label).sense(egui::Sense::click()));
                if mismatch.abs() > SIGMA_TOLERANCE {
                    ui.colored_label(ui.visuals().warn_fg_color, format!("Δσ {mismatch:+.4}"));
                }
                label.on_hover_text("Click to show this run").clicked()
            })
            .inner;
        let other =
            match run_tensor(ui.ctx(), &run.document, &mut run.caches.tensors, (run_seed, run_step, view)) {
                Ok(other) => other,
                Err(missing) => {
                    missing.show(ui);
                    ui.end_row();
                    return clicked;
                }
            };
        match shown {
            Some((shown, _)) if other.shape() != shown.shape() => {
                frames_row_ui(ui, levels, room, &other, None, None);
                ui.end_row();
                ui.label("");
                let message = format!(
                    "shape {:?} differs from the shown run's {:?}: no difference drawn",
                    other.shape(),
                    shown.shape()
                );
                ui.colored_label(ui.visuals().warn_fg_color, message);
            }
            Some((shown, shared_style)) => {
                frames_row_ui(ui, levels, room, &other, shared_style, None);
                if self.state.show_difference {
                    ui.end_row();
                    ui.label(format!("|{} - shown|", run.document.title()));
                    match run.caches.tensors.largest_difference(ui.ctx(), &other, shown) {
                        Some(largest) => {
                            frames_row_ui(ui, levels, room, &other, None, Some((shown, colormap, largest)));
                        }
                        None => NoTensor::Reading.show(ui),
                    }
                }
            }
            None => frames_row_ui(ui, levels, room, &other, None, None),
        }
        ui.end_row();
        clicked
    }
}

impl View for RunsView {
    fn id(&self) -> &'static str {
        "runs"
    }

    fn title(&self) -> &'static str {
        "Compare runs"
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        if cx.other_runs.is_empty() {
            ui.label(
                "One run is open. Open another trajectory (File > Open, or drop a file on the window): \
                 the runs then show here side by side, each at the step of the nearest noise level.",
            );
            return;
        }
        let (seed_idx, step_idx, view) = (cx.cursor.seed_idx, cx.cursor.step_idx, cx.cursor.view);
        let Some(&sigma) = step_sigmas(cx.document).get(step_idx) else { return };
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "{} of seed {seed_idx} at step {step_idx} (σ {sigma:.4}) and, for every other open run, \
                 at the step of the nearest σ.",
                view.label()
            ));
            ui.checkbox(&mut self.state.show_difference, "|difference| from this run");
        });
        ui.separator();
        let mut clicked_run = None;
        egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            let room = ui.available_width() - ROW_RESERVED;
            let shown = run_tensor(ui.ctx(), cx.document, &mut cx.caches.tensors, (seed_idx, step_idx, view));
            let shared_style = shown.as_ref().ok().map(ImageStyle::default_for);
            egui::Grid::new("runs_grid").spacing(egui::Vec2::splat(4.0)).show(ui, |ui| {
                ui.label(format!("{} (shown)\nstep {step_idx}, σ {sigma:.4}", cx.document.title()));
                match &shown {
                    Ok(tensor) => {
                        frames_row_ui(
                            ui,
                            &mut cx.caches.frame_levels,
                            room,
                            tensor,
                            shared_style.clone(),
                            None,
                        );
                    }
                    Err(missing) => missing.show(ui),
                }
                ui.end_row();
                for (run_idx, run) in cx.other_runs.iter_mut().enumerate() {
                    let shown = shown.as_ref().ok().map(|tensor| (tensor, shared_style.clone()));
                    let cursor = (seed_idx, sigma, view, cx.colormap);
                    if self.run_row_ui(ui, room, (run, &mut cx.caches.frame_levels), shown, cursor) {
                        clicked_run = Some(run_idx);
                    }
                }
            });
            egui::CollapsingHeader::new("Noise schedules (σ at the start of each step)")
                .default_open(true)
                .show(ui, |ui| schedules_plot_ui(ui, cx.document, cx.other_runs, sigma));
        });
        if let Some(run_idx) = clicked_run {
            cx.commands.push(AppCommand::ShowRun(run_idx));
        }
    }

    fn save_state(&self) -> Option<String> {
        to_saved(&self.state)
    }

    fn load_state(&mut self, state: &str) {
        restore_saved(&mut self.state, state);
    }
}

/// The colours of the other runs in the schedules plot (matplotlib's `Set2`, unlike the seed
/// colours); the shown run is drawn in the strong text colour.
const RUN_PALETTE: [egui::Color32; 8] = [
    egui::Color32::from_rgb(0x66, 0xc2, 0xa5),
    egui::Color32::from_rgb(0xfc, 0x8d, 0x62),
    egui::Color32::from_rgb(0x8d, 0xa0, 0xcb),
    egui::Color32::from_rgb(0xe7, 0x8a, 0xc3),
    egui::Color32::from_rgb(0xa6, 0xd8, 0x54),
    egui::Color32::from_rgb(0xff, 0xd9, 0x2f),
    egui::Color32::from_rgb(0xe5, 0xc4, 0x94),
    egui::Color32::from_rgb(0xb3, 0xb3, 0xb3),
];

/// Every open run's sigma over its steps, with the step each run shows marked; the legend sits
/// above the plot so that it covers no line.
fn schedules_plot_ui(ui: &mut egui::Ui, shown: &Document, others: &[ParkedRun], sigma: f64) {
    let runs: Vec<&Document> = std::iter::once(shown).chain(others.iter().map(|run| &run.document)).collect();
    let strong = ui.visuals().strong_text_color();
    let colour = |idx: usize| if idx == 0 { strong } else { RUN_PALETTE[(idx - 1) % RUN_PALETTE.len()] };
    let series: Vec<(String, Vec<Option<f64>>)> = runs
        .iter()
        .enumerate()
        .map(|(idx, document)| {
            let name = if idx == 0 { format!("{} (shown)", document.title()) } else { document.title() };
            (name, step_sigmas(document).iter().copied().map(Some).collect())
        })
        .collect();
    ui.horizontal_wrapped(|ui| {
        for (idx, (name, _)) in series.iter().enumerate() {
            ui.label(egui::RichText::new(format!("■ {name}")).color(colour(idx)));
        }
        copy_csv_button(ui, || steps_csv(&series));
    });
    Plot::new("run_schedules_plot")
        .height(PLOT_HEIGHT)
        .x_grid_spacer(step_grid())
        .x_axis_label("step")
        .y_axis_label("σ")
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            for (idx, ((name, values), document)) in series.iter().zip(&runs).enumerate() {
                let points: Vec<[f64; 2]> =
                    values.iter().enumerate().filter_map(|(k, v)| Some([k as f64, (*v)?])).collect();
                plot_ui.line(Line::new(name.clone(), PlotPoints::from(points)).width(2.0).color(colour(idx)));
                if let Some((step_idx, mismatch)) = nearest_step_by_sigma(step_sigmas(document), sigma) {
                    let marker = Points::new(name.clone(), vec![[step_idx as f64, sigma + mismatch]]);
                    plot_ui.points(marker.radius(5.0).color(colour(idx)));
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_align_by_the_nearest_sigma_and_say_by_how_much_they_differ() {
        // A 4-step and a 6-step schedule: sigma 0.5 is step 2 of the first; of the second, the
        // nearest is step 3 (0.55) for 0.52 and step 4 (0.45) for 0.48.
        let four = [1.0, 0.75, 0.5, 0.25];
        let six = [1.0, 0.85, 0.7, 0.55, 0.45, 0.2];
        assert_eq!(nearest_step_by_sigma(&four, 0.5), Some((2, 0.0)));
        assert_eq!(nearest_step_by_sigma(&six, 0.52), Some((3, 0.55 - 0.52)));
        assert_eq!(nearest_step_by_sigma(&six, 0.48), Some((4, 0.45 - 0.48)));
        assert_eq!(nearest_step_by_sigma(&six, 0.21), Some((5, 0.2 - 0.21)));
        assert_eq!(nearest_step_by_sigma(&[], 0.5), None);
    }
}
