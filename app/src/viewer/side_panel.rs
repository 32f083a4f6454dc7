//! The side panel: what the open file holds, and which seed and tensor the views show.

use stepscope_engine::trajectory::{Intervention, Manifest, NoiseSource};

use super::command::{AppCommand, CommandQueue};
use super::document::Document;
use super::step_plot::seed_colour;
use super::step_view::StepView;

/// The file summary, the seed picker (when there are several seeds) and the view picker
/// (`view` is the one shown); a choice is pushed as a command.
pub fn side_panel_ui(ui: &mut egui::Ui, trajectory: &Document, view: StepView, commands: &mut CommandQueue) {
    ui.heading("Trajectory");
    summary_ui(ui, trajectory);
    ui.separator();

    let num_seeds = trajectory.manifest().seeds.len();
    if num_seeds > 1 {
        ui.strong("Seed");
        for seed_idx in 0..num_seeds {
            let text = seed_label(trajectory.manifest(), seed_idx);
            let text = egui::RichText::new(format!("■ {text}")).color(seed_colour(seed_idx));
            if ui.radio(trajectory.seed_idx == seed_idx, text).clicked() {
                commands.push(AppCommand::SelectSeed(seed_idx));
            }
        }
        ui.separator();
    }

    ui.strong("View");
    for candidate in StepView::ALL {
        let available = trajectory.has_view(candidate);
        ui.add_enabled_ui(available, |ui| {
            let clicked = ui
                .radio(view == candidate, candidate.label())
                .on_disabled_hover_text("Not stored in this file")
                .clicked();
            if clicked {
                commands.push(AppCommand::SelectView(candidate));
            }
        });
    }
}

fn summary_ui(ui: &mut egui::Ui, trajectory: &Document) {
    let manifest = trajectory.manifest();
    let title = ui.label(egui::RichText::new(trajectory.title()).strong());
    if let Some(path) = trajectory.path() {
        title.on_hover_text(path.display().to_string());
    }
    let [channels, frames, height, width] = manifest.latent_shape;
    let schedule = &manifest.schedule;
    egui::Grid::new("manifest_summary").num_columns(2).striped(true).show(ui, |ui| {
        let mut row = |key: &str, value: String| {
            ui.label(key);
            ui.add(egui::Label::new(value).truncate());
            ui.end_row();
        };
        row("Model", manifest.model.source.clone());
        row("Latents", format!("{channels} x {frames} x {height} x {width} (C x F x H x W)"));
        row(
            "Schedule",
            format!("{}, {} steps, shift {}", schedule.scheduler, schedule.steps, schedule.shift),
        );
        row("Seeds", manifest.seeds.len().to_string());
        if let Some(prompt) = &manifest.conditioning.prompt {
            row("Prompt", prompt.clone());
        }
        if let Some(task) = &manifest.conditioning.task {
            row("Task", format!("{} (seed {})", task.name, task.seed));
        }
    });
    ui.collapsing("Full description", |ui| {
        ui.add(egui::Label::new(egui::RichText::new(trajectory.describe()).monospace().small()).wrap());
    });
}

/// "seed 0 (RNG 1)", "seed 2 (forked from 0 at step 5)", or with an intervention
/// "seed 3 (forked from 0 at step 5, layers [2] skipped)".
pub(super) fn seed_label(manifest: &Manifest, seed_idx: usize) -> String {
    let Some(seed) = manifest.seeds.get(seed_idx) else {
        return format!("seed {seed_idx}");
    };
    let origin = match (seed.forked_from, seed.noise) {
        (Some(fork), _) => {
            let altered = match &seed.intervention {
                Some(Intervention::PaintX0 { pixels, .. }) => {
                    format!(
                        ", x0_hat of step {} painted at {} pixels",
                        fork.step.saturating_sub(1),
                        pixels.len()
                    )
                }
                Some(Intervention::SkipLayers { layers }) => format!(", layers {layers:?} skipped"),
                Some(Intervention::Ensemble { rng_seeds, merge_steps }) => {
                    format!(", ensemble of {} seeds merged over {merge_steps} steps", rng_seeds.len())
                }
                None => String::new(),
            };
            format!("forked from {} at step {}{altered}", fork.seed_index, fork.step)
        }
        (None, NoiseSource::RngSeed(rng_seed)) => format!("RNG {rng_seed}"),
        (None, NoiseSource::Given) => "given noise".to_owned(),
    };
    format!("seed {seed_idx} ({origin})")
}
