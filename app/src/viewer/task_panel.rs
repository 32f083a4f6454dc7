//! The task panel: for a run that solves a built-in task, the expected video, and how well
//! `x0_hat` solves it at the current step (the task's rule-based score and its parts) and at
//! every step, for every seed (a plot; click it to go to a step), and each seed's commit step:
//! from where on its prediction stays solved.

use super::step_plot::{
    clicked_step, copy_csv_button, seed_colour, seed_legend_ui, step_grid, steps_csv, unit_grid,
};
use egui_plot::{Line, Plot, PlotPoints, Points, VLine};
use stepscope_engine::analysis::commit_step;
use stepscope_engine::tasks::Score;

use super::document::Document;
use super::gpu::{self, GpuImage, GpuTensor, ImageStyle};
use super::stats_cache::StatsCache;

const PLOT_HEIGHT: f32 = 160.0;
/// The most seeds drawn in the score plot.
const MAX_CURVES: usize = 8;

/// The ground truth's frames in a row, on the GPU.
fn expected_video_ui(ui: &mut egui::Ui, ground_truth: &GpuTensor) {
    let [_, frames, height, width] = ground_truth.shape();
    // Sized to the room there is, so that the row never widens the panel it sits in.
    let gap = ui.spacing().item_spacing.x;
    let room = ui.available_width() - gap * frames.saturating_sub(1) as f32;
    let side = (room / frames.max(1) as f32).floor().clamp(8.0, 64.0);
    let size = egui::Vec2::new(side, side * height as f32 / width.max(1) as f32);
    ui.horizontal(|ui| {
        for frame_idx in 0..frames {
            let style = ImageStyle::default_for(ground_truth);
            if let Some(image) = GpuImage::new(ground_truth.clone(), frame_idx, style) {
                gpu::image_ui(ui, image, size).on_hover_text(format!("expected frame {frame_idx}"));
            }
        }
    });
}

/// Draws the panel if the document's run solves a task; returns the step the user clicked.
pub fn task_panel_ui(
    ui: &mut egui::Ui,
    document: &Document,
    stats: &mut StatsCache,
    step_idx: usize,
) -> Option<usize> {
    let info = document.manifest().conditioning.task.as_ref()?;
    ui.separator();
    ui.strong(format!("Task: {} (instance {})", info.name, info.seed));
    match stats.task(document) {
        Ok((instance, ground_truth)) => {
            ui.add(egui::Label::new(egui::RichText::new(&instance.prompt).italics()).wrap());
            egui::CollapsingHeader::new("Expected video").default_open(true).show(ui, |ui| {
                expected_video_ui(ui, ground_truth);
            });
        }
        Err(message) => {
            ui.colored_label(ui.visuals().warn_fg_color, message);
            return None;
        }
    }
    let scores = stats.task_scores(document, document.seed_idx).or_show(ui)?;
    score_ui(ui, scores.get(step_idx).and_then(Option::as_ref), step_idx);
    let shown_seed = document.seed_idx;
    let mut curves = Vec::new();
    for seed_idx in 0..document.num_seeds().min(MAX_CURVES) {
        let Some(scores) = stats.task_scores(document, seed_idx).ready() else { continue };
        let points: Vec<[f64; 2]> = scores
            .iter()
            .enumerate()
            .filter_map(|(step, score)| score.as_ref().map(|score| [step as f64, f64::from(score.value)]))
            .collect();
        let solved: Vec<[f64; 2]> = scores
            .iter()
            .enumerate()
            .filter_map(|(step, score)| {
                score.as_ref().filter(|score| score.solved).map(|score| [step as f64, f64::from(score.value)])
            })
            .collect();
        curves.push((seed_idx, points, solved, commit_so_far(scores)));
    }
    let commits: Vec<String> = curves
        .iter()
        .map(|(seed_idx, _, _, commit)| match commit {
            Commit { step: Some(step), finished: true } => format!("seed {seed_idx}: step {step}"),
            Commit { step: Some(step), finished: false } => format!("seed {seed_idx}: step {step} so far"),
            Commit { step: None, finished: true } => format!("seed {seed_idx}: not solved"),
            Commit { step: None, finished: false } => format!("seed {seed_idx}: not solved yet"),
        })
        .collect();
    ui.label(format!("Commits to a solution (solved from then on): {}", commits.join(", ")));
    ui.horizontal(|ui| {
        seed_legend_ui(ui, curves.iter().map(|(seed_idx, ..)| *seed_idx), &[]);
        copy_csv_button(ui, || {
            let series: Vec<(String, Vec<Option<f64>>)> = (0..document.num_seeds().min(MAX_CURVES))
                .filter_map(|seed_idx| {
                    let scores = stats.task_scores(document, seed_idx).ready()?;
                    let values =
                        scores.iter().map(|score| score.as_ref().map(|s| f64::from(s.value))).collect();
                    Some((format!("seed {seed_idx} score"), values))
                })
                .collect();
            steps_csv(&series)
        });
    });
    let response = Plot::new("task_score_plot")
        .height(PLOT_HEIGHT)
        // The panel scrolls vertically: keep the plot inside what it shows across.
        .width(ui.available_width().min(ui.clip_rect().right() - ui.cursor().left()).max(120.0))
        .x_grid_spacer(step_grid())
        .y_grid_spacer(unit_grid())
        .y_axis_formatter(|mark, _| format!("{:.1}", mark.value))
        .x_axis_label("step")
        .y_axis_label("score of x0_hat")
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .include_x(document.num_steps().saturating_sub(1) as f64)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .show(ui, |plot_ui| {
            for (seed_idx, points, solved, _) in curves {
                let width = if seed_idx == shown_seed { 2.5 } else { 1.0 };
                let (name, colour) = (format!("seed {seed_idx}"), seed_colour(seed_idx));
                plot_ui.line(Line::new(name.clone(), PlotPoints::from(points)).width(width).color(colour));
                plot_ui.points(Points::new(name, PlotPoints::from(solved)).radius(width + 1.0).color(colour));
            }
            plot_ui.vline(VLine::new("current step", step_idx as f64).width(1.0));
            plot_ui.pointer_coordinate()
        });
    clicked_step(&response, document.num_steps())
}

/// A seed's commit step over the steps it has reached: a run still going can only have
/// committed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Commit {
    step: Option<usize>,
    /// Every step is scored (the run reached its end).
    finished: bool,
}

fn commit_so_far(scores: &[Option<Score>]) -> Commit {
    let reached = scores.iter().rposition(Option::is_some).map_or(0, |step| step + 1);
    Commit { step: commit_step(&scores[..reached]), finished: reached == scores.len() && reached > 0 }
}

/// The verdict on `x0_hat` at `step_idx` (the checks it fails, if any) and its parts as bars.
fn score_ui(ui: &mut egui::Ui, score: Option<&Score>, step_idx: usize) {
    match score {
        Some(score) => {
            let failed: Vec<&str> = score.failed_checks().collect();
            let verdict = if score.solved {
                "solved".to_owned()
            } else {
                format!("not solved: fails {}", failed.join(", "))
            };
            ui.label(format!("x0_hat at step {step_idx}: score {:.3}, {verdict}", score.value)).on_hover_text(
                format!(
                "Solved needs every check of the task's scorer (at colour tolerance {}); the score is its weighted parts",
                stepscope_engine::tasks::TOLERANCE
            ),
            );
            egui::Grid::new("task_score_parts").num_columns(2).show(ui, |ui| {
                for (name, value) in &score.parts {
                    ui.label(*name);
                    ui.add(egui::ProgressBar::new(*value).text(format!("{value:.2}")).desired_width(120.0));
                    ui.end_row();
                }
            });
        }
        None => {
            ui.label(format!("no x0_hat at step {step_idx} yet"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(solved: bool) -> Score {
        Score { value: if solved { 1.0 } else { 0.4 }, solved, parts: Vec::new(), checks: Vec::new() }
    }

    #[test]
    fn a_run_in_progress_has_committed_so_far_or_not_yet() {
        let halfway = [Some(scored(false)), Some(scored(true)), Some(scored(true)), None, None];
        assert_eq!(commit_so_far(&halfway), Commit { step: Some(1), finished: false });
        let not_yet = [Some(scored(true)), Some(scored(false)), None];
        assert_eq!(commit_so_far(&not_yet), Commit { step: None, finished: false });
        let done = [Some(scored(false)), Some(scored(true)), Some(scored(true))];
        assert_eq!(commit_so_far(&done), Commit { step: Some(1), finished: true });
        assert_eq!(commit_so_far(&[None, None]), Commit { step: None, finished: false });
    }
}
