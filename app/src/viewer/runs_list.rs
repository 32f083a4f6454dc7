//! The runs open in the window, listed like rerun's recordings at the top of the side panel
//! once there is more than one: the one shown in bold, a click on another shows it, `x` closes
//! one.

use super::command::{AppCommand, CommandQueue};
use super::document::Document;
use super::open_runs::OpenRuns;

/// The list; what the user asked for is pushed as a command.
pub fn runs_list_ui(ui: &mut egui::Ui, shown: &Document, runs: &OpenRuns, commands: &mut CommandQueue) {
    if runs.is_empty() {
        return;
    }
    ui.horizontal(|ui| {
        ui.heading("Runs");
        ui.label(format!("({} open)", runs.len() + 1))
            .on_hover_text("Compare runs shows them side by side; File > Open or a drop adds one.");
    });
    run_row_ui(ui, shown, true, commands, None);
    for (run_idx, run) in runs.runs().iter().enumerate() {
        run_row_ui(ui, &run.document, false, commands, Some(run_idx));
    }
    ui.separator();
}

/// One run: its title (with its path and shape on hover) and a close button.
fn run_row_ui(
    ui: &mut egui::Ui,
    document: &Document,
    shown: bool,
    commands: &mut CommandQueue,
    run_idx: Option<usize>,
) {
    let [channels, frames, height, width] = document.manifest().latent_shape;
    let hover = format!(
        "{}\n{} seeds, {} steps, latents {channels} x {frames} x {height} x {width}",
        document.path().map_or_else(|| "live run (not saved)".to_owned(), |path| path.display().to_string()),
        document.num_seeds(),
        document.num_steps(),
    );
    ui.horizontal(|ui| {
        let close = ui.small_button("x").on_hover_text("Close this run");
        let title = egui::RichText::new(document.title());
        let title = if shown { title.strong() } else { title };
        let row = ui.selectable_label(shown, title).on_hover_text(hover);
        if row.clicked()
            && let Some(run_idx) = run_idx
        {
            commands.push(AppCommand::ShowRun(run_idx));
        }
        if close.clicked() {
            commands.push(AppCommand::CloseRun(run_idx));
        }
    });
}
