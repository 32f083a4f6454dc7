//! The live run's tool bar above the frames: step, run, pause, fork and rewind at the cursor,
//! progress, save, and the engine's last error.

use stepscope_engine::worker::LiveRecord;

use super::session::{Activity, LiveSession};

/// What the user asked of the live run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveAction {
    /// One more step of the shown seed.
    Step,
    /// Step the shown seed to its end.
    RunToEnd,
    Pause,
    /// A new seed branching from the shown one entering `step_idx`, re-noised with `rng_seed`.
    Fork {
        step_idx: usize,
        rng_seed: u64,
    },
    /// Put the shown seed back to the state entering `step_idx`.
    Rewind {
        step_idx: usize,
    },
    /// Save the run as a trajectory file.
    Save,
    /// Decode the shown seed's `x0_hat` at `step_idx` to pixels with the pipeline's VAE.
    Decode {
        step_idx: usize,
    },
}

/// The bar; `seed_idx` is the shown seed and `cursor_step` the timeline's step.
pub fn live_controls_ui(
    ui: &mut egui::Ui,
    session: &mut LiveSession,
    record: &LiveRecord,
    seed_idx: usize,
    cursor_step: usize,
) -> Option<LiveAction> {
    let mut action = None;
    let total = record.manifest().schedule.steps;
    let taken = record.next_step(seed_idx);
    let finished = taken >= total;
    let busy = session.is_busy();
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("Live: seed {seed_idx}"));
        let step = ui
            .add_enabled(!busy && !finished, egui::Button::new("Step"))
            .on_hover_text("Take one denoising step (S)");
        if step.clicked() {
            action = Some(LiveAction::Step);
        }
        if matches!(session.activity(), Activity::Running { .. } | Activity::Working) {
            if ui.button("Pause").on_hover_text("Stop after the step in progress (P)").clicked() {
                action = Some(LiveAction::Pause);
            }
        } else if ui
            .add_enabled(!busy && !finished, egui::Button::new("Run to end"))
            .on_hover_text("Step until the last step (R)")
            .clicked()
        {
            action = Some(LiveAction::RunToEnd);
        }
        ui.separator();
        // Forks and rewinds branch from the state entering the cursor's step, which exists for
        // every step taken and the next one.
        let reachable = cursor_step <= taken && cursor_step < total;
        let fork = ui
            .add_enabled(!busy && reachable, egui::Button::new(format!("Fork at step {cursor_step}")))
            .on_hover_text(
                "A new seed from the state entering this step, re-noised with the noise seed at right",
            );
        if fork.clicked() {
            action = Some(LiveAction::Fork { step_idx: cursor_step, rng_seed: session.fork_rng_seed });
        }
        let rng_label = ui.label("noise seed");
        ui.add(egui::DragValue::new(&mut session.fork_rng_seed)).labelled_by(rng_label.id);
        let rewind = ui
            .add_enabled(
                !busy && cursor_step < taken,
                egui::Button::new(format!("Rewind to step {cursor_step}")),
            )
            .on_hover_text("Forget this seed's steps from here on, to take them again");
        if rewind.clicked() {
            action = Some(LiveAction::Rewind { step_idx: cursor_step });
        }
        ui.separator();
        if let Some(decoder) = &mut session.decoder {
            let decode = ui
                .add_enabled(cursor_step < taken, egui::Button::new(format!("Decode step {cursor_step}")))
                .on_hover_text("Decode this step's x0_hat to pixels with the pipeline's VAE (shown as the decoded video)");
            if decode.clicked() {
                action = Some(LiveAction::Decode { step_idx: cursor_step });
            }
            ui.checkbox(&mut decoder.follow, "decode each step")
                .on_hover_text("Decode every new step of the shown seed as it arrives (stepping does not wait)");
            if let Some((_, step)) = decoder.pending() {
                ui.spinner();
                ui.label(format!("decoding step {step}"));
            }
            ui.separator();
        }
        let progress = egui::ProgressBar::new(taken as f32 / total.max(1) as f32)
            .desired_width(140.0)
            .text(format!("{taken} / {total} steps"))
            .animate(busy);
        ui.add(progress);
        if ui
            .add_enabled(!session.is_saving() && taken > 0, egui::Button::new("Save…"))
            .on_hover_text("Save the run as a trajectory file (Ctrl+S)")
            .clicked()
        {
            action = Some(LiveAction::Save);
        }
    });
    if let Some(status) = &session.save_status {
        ui.label(egui::RichText::new(status).small());
    }
    if let Some(message) = session.error.clone() {
        ui.horizontal(|ui| {
            ui.colored_label(ui.visuals().error_fg_color, format!("Engine error: {message}"));
            if ui.small_button("Dismiss").clicked() {
                session.error = None;
            }
        });
    }
    action
}
