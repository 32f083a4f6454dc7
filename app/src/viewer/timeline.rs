//! The timeline along the bottom: transport buttons, the current step with its noise level, and
//! a strip with one cell per denoising step to click or drag along.
//!
//! The widgets only read the [`TimeControl`]; what the user asks for comes back as
//! [`TimeCommand`]s for the caller to apply.

use egui::{CornerRadius, Rect, Sense, Stroke, Vec2, pos2};
use stepscope_engine::trajectory::Schedule;

use super::time_control::{FPS_RANGE, TimeCommand, TimeControl};

/// Height of the step strip, in points.
const STRIP_HEIGHT: f32 = 36.0;

/// The whole timeline; `recorded[k]` says whether step `k` has data for the shown seed (a live
/// run fills them in as it goes). Returns the commands the user gave.
pub fn timeline_ui(
    ui: &mut egui::Ui,
    time: &TimeControl,
    schedule: &Schedule,
    recorded: &[bool],
) -> Vec<TimeCommand> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        transport_ui(ui, time, &mut commands);
        ui.separator();
        ui.label(egui::RichText::new(step_label(time)).monospace().strong());
        ui.label(egui::RichText::new(noise_label(schedule, time.step_idx())).monospace());
        ui.separator();
        settings_ui(ui, time, &mut commands);
    });
    if let Some(step_idx) = step_strip_ui(ui, time, schedule, recorded) {
        commands.push(TimeCommand::SetStep(step_idx));
    }
    commands
}

/// "Step 3 / 11": the current and the last step index.
fn step_label(time: &TimeControl) -> String {
    format!("Step {} / {}", time.step_idx(), time.last_step_idx())
}

/// The noise level the step starts from, the one it goes to, and the model's timestep.
fn noise_label(schedule: &Schedule, step_idx: usize) -> String {
    let sigma = |idx: usize| schedule.sigmas.get(idx).map_or_else(|| "?".to_owned(), |s| format!("{s:.4}"));
    let timestep = schedule.timesteps.get(step_idx).map_or_else(|| "?".to_owned(), |t| format!("{t:.1}"));
    format!("σ {} → {}   t {timestep}", sigma(step_idx), sigma(step_idx + 1))
}

fn transport_ui(ui: &mut egui::Ui, time: &TimeControl, commands: &mut Vec<TimeCommand>) {
    let mut button = |ui: &mut egui::Ui, text: &str, hint: &str, command: TimeCommand| {
        if ui.button(text).on_hover_text(hint).clicked() {
            commands.push(command);
        }
    };
    button(ui, "⏮", "First step (Home)", TimeCommand::First);
    button(ui, "⏴", "Previous step (Left)", TimeCommand::Step(-1));
    let (play_text, play_hint) =
        if time.is_playing() { ("⏸ Pause", "Pause (Space)") } else { ("▶ Play", "Play (Space)") };
    button(ui, play_text, play_hint, TimeCommand::TogglePlay);
    button(ui, "⏵", "Next step (Right)", TimeCommand::Step(1));
    button(ui, "⏭", "Last step (End)", TimeCommand::Last);
}

fn settings_ui(ui: &mut egui::Ui, time: &TimeControl, commands: &mut Vec<TimeCommand>) {
    let mut fps = time.fps();
    let fps_label = ui.label("fps");
    let fps_response = ui
        .add(egui::DragValue::new(&mut fps).range(FPS_RANGE).speed(0.1).max_decimals(1))
        .labelled_by(fps_label.id);
    if fps_response.changed() {
        commands.push(TimeCommand::SetFps(fps));
    }
    let mut looping = time.is_looping();
    if ui
        .checkbox(&mut looping, "Loop")
        .on_hover_text("Play from the start again after the last step")
        .changed()
    {
        commands.push(TimeCommand::SetLooping(looping));
    }
}

/// One cell per step, its bar as tall as the step's starting noise level, the current step
/// highlighted, steps without data drawn as outlines. Returns the step the user clicked or
/// dragged to.
fn step_strip_ui(
    ui: &mut egui::Ui,
    time: &TimeControl,
    schedule: &Schedule,
    recorded: &[bool],
) -> Option<usize> {
    let num_steps = time.num_steps().max(1);
    let (rect, response) =
        ui.allocate_exact_size(Vec2::new(ui.available_width(), STRIP_HEIGHT), Sense::click_and_drag());
    response.widget_info(|| egui::WidgetInfo::slider(true, time.step_idx() as f64, "Step strip"));
    let cell_width = rect.width() / num_steps as f32;
    let step_at = |x: f32| (((x - rect.left()) / cell_width).floor().max(0.0) as usize).min(num_steps - 1);

    if ui.is_rect_visible(rect) {
        let painter = ui.painter_at(rect);
        let visuals = ui.visuals();
        painter.rect_filled(rect, CornerRadius::same(2), visuals.extreme_bg_color);
        let max_sigma = schedule.sigmas.iter().copied().fold(f64::EPSILON, f64::max);
        for step_idx in 0..num_steps {
            let sigma = schedule.sigmas.get(step_idx).copied().unwrap_or(0.0);
            let bar_height = (sigma / max_sigma) as f32 * (rect.height() - 4.0);
            let left = rect.left() + step_idx as f32 * cell_width;
            let bar = Rect::from_min_max(
                pos2(left + 1.0, rect.bottom() - 2.0 - bar_height.max(2.0)),
                pos2(left + cell_width - 1.0, rect.bottom() - 2.0),
            );
            let colour = if step_idx == time.step_idx() {
                visuals.selection.bg_fill
            } else if response.hovered() && response.hover_pos().is_some_and(|p| step_at(p.x) == step_idx) {
                visuals.widgets.hovered.bg_fill
            } else {
                visuals.widgets.inactive.bg_fill
            };
            if recorded.get(step_idx).copied().unwrap_or(true) {
                painter.rect_filled(bar, CornerRadius::ZERO, colour);
            } else {
                painter.rect_stroke(
                    bar,
                    CornerRadius::ZERO,
                    Stroke::new(1.0, colour),
                    egui::StrokeKind::Inside,
                );
            }
        }
        let cursor_x = rect.left() + (time.step_idx() as f32 + 0.5) * cell_width;
        painter.vline(cursor_x, rect.y_range(), Stroke::new(2.0, visuals.strong_text_color()));
        if response.has_focus() {
            painter.rect_stroke(
                rect,
                CornerRadius::same(2),
                visuals.selection.stroke,
                egui::StrokeKind::Inside,
            );
        }
    }

    let response = response.on_hover_text("Click or drag to pick a step; bar height is the noise level σ");
    if response.clicked() || response.dragged() {
        response.interact_pointer_pos().map(|pointer| step_at(pointer.x)).filter(|&s| s != time.step_idx())
    } else {
        None
    }
}
