//! The "New live run" window: pick a model folder, a built-in task instance or prompt
//! embeddings (or, for a whole pipeline folder, a typed prompt), noise seed, size and schedule,
//! then start.

use stepscope_engine::device::DEVICE_CHOICES;
use stepscope_engine::scheduler::SchedulerKind;

use stepscope_engine::tasks::TaskKind;

use super::setup::{LiveSetup, LiveTask};
use crate::viewer::app_files::FileRequest;

/// What the user did in the dialog this frame.
#[derive(Debug, Default)]
pub struct DialogOutput {
    /// Start was pressed: the run to start.
    pub start: Option<LiveSetup>,
    /// A Browse button was pressed: the path it asks for.
    pub browse: Option<FileRequest>,
}

/// The dialog's state while it is open: the choices being edited and the last start failure.
#[derive(Debug, Default)]
pub struct NewRunDialog {
    pub open: bool,
    pub setup: LiveSetup,
    /// Why the last start failed (the model did not load, ...), shown in the dialog.
    pub error: Option<String>,
}

impl NewRunDialog {
    /// Opens the dialog on `setup`.
    pub fn show(&mut self, setup: LiveSetup) {
        self.open = true;
        self.setup = setup;
        self.error = None;
    }

    /// Draws the dialog if open; returns what the user asked for.
    pub fn ui(&mut self, ctx: &egui::Context) -> DialogOutput {
        let mut start = false;
        let mut browse = None;
        let mut open = self.open;
        egui::Window::new("New live run").open(&mut open).resizable(false).collapsible(false).show(
            ctx,
            |ui| {
                egui::Grid::new("new_run_grid").num_columns(3).show(ui, |ui| {
                    if path_row_ui(ui, "Model folder", &mut self.setup.model_dir) {
                        browse = Some(FileRequest::ModelDir);
                    }
                    task_row_ui(ui, &mut self.setup.task);
                    if self.setup.task.is_none() && self.setup.is_pipeline() {
                        prompt_rows_ui(ui, &mut self.setup);
                        if path_row_ui(ui, "First frame (TI2V)", &mut self.setup.image) {
                            browse = Some(FileRequest::FirstFrame);
                        }
                    } else if self.setup.task.is_none()
                        && path_row_ui(ui, "Prompt embeddings", &mut self.setup.prompt_embeds)
                    {
                        browse = Some(FileRequest::PromptEmbeds);
                    }
                    let setup = &mut self.setup;
                    drag_row_ui(ui, "Noise seed", egui::DragValue::new(&mut setup.rng_seed));
                    ui.label("Latent size");
                    ui.horizontal(|ui| {
                        // A task's puzzle fixes the height and width.
                        let extents = if setup.task.is_some() { 1 } else { 3 };
                        for (extent, name) in
                            setup.size.iter_mut().zip(["frames", "height", "width"]).take(extents)
                        {
                            let label = ui.label(name);
                            ui.add(egui::DragValue::new(extent).range(1..=512)).labelled_by(label.id);
                        }
                    });
                    ui.end_row();
                    drag_row_ui(ui, "Steps", egui::DragValue::new(&mut setup.steps).range(1..=1000));
                    drag_row_ui(
                        ui,
                        "Shift",
                        egui::DragValue::new(&mut setup.shift).range(0.1..=20.0).speed(0.05),
                    );
                    ui.label("Scheduler");
                    ui.horizontal(|ui| {
                        ui.radio_value(&mut setup.scheduler, SchedulerKind::UniPc, "UniPC");
                        ui.radio_value(&mut setup.scheduler, SchedulerKind::Euler, "Euler");
                    });
                    ui.end_row();
                    let capture = ui.label("Capture");
                    ui.text_edit_singleline(&mut setup.capture)
                        .labelled_by(capture.id)
                        .on_hover_text("e.g. token_norm,pca3,decoded@all;self_attn@2:q=0,5 (empty: none)");
                    ui.end_row();
                    device_row_ui(ui, &mut setup.device);
                });
                if let Some(error) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                ui.separator();
                start = ui.button("Start").clicked();
            },
        );
        self.open = open && !start;
        DialogOutput { start: start.then(|| self.setup.clone()), browse }
    }
}

/// A pipeline folder's prompt, negative prompt and guidance scale.
fn prompt_rows_ui(ui: &mut egui::Ui, setup: &mut LiveSetup) {
    let label = ui.label("Prompt");
    ui.add(
        egui::TextEdit::multiline(&mut setup.prompt)
            .desired_rows(2)
            .hint_text("typed, encoded by the pipeline's UMT5"),
    )
    .labelled_by(label.id);
    ui.end_row();
    let label = ui.label("Negative prompt");
    ui.text_edit_singleline(&mut setup.negative_prompt).labelled_by(label.id);
    ui.end_row();
    drag_row_ui(ui, "Guidance", egui::DragValue::new(&mut setup.guidance).range(1.0..=20.0).speed(0.05));
}

/// A label, a text field holding a path, and a Browse button; returns whether Browse was
/// pressed.
fn path_row_ui(ui: &mut egui::Ui, label: &str, path: &mut std::path::PathBuf) -> bool {
    let label = ui.label(label);
    let mut text = path.display().to_string();
    if ui.add(egui::TextEdit::singleline(&mut text).desired_width(280.0)).labelled_by(label.id).changed() {
        *path = text.into();
    }
    let browse = ui.button("Browse…").clicked();
    ui.end_row();
    browse
}

/// The task picker: none (free run on given prompt embeddings) or a built-in task, its size and
/// instance seed.
fn task_row_ui(ui: &mut egui::Ui, task: &mut Option<LiveTask>) {
    let label = ui.label("Task");
    ui.horizontal(|ui| {
        let current = task.as_ref().map_or("none", |task| task.name.as_str()).to_owned();
        egui::ComboBox::from_id_salt("live_task")
            .selected_text(&current)
            .show_ui(ui, |ui| {
                if ui.selectable_label(task.is_none(), "none").clicked() {
                    *task = None;
                }
                for kind in TaskKind::ALL {
                    if ui.selectable_label(current == kind.name(), kind.name()).clicked() {
                        let size = task.as_ref().map_or(5, |task| task.size);
                        *task = Some(LiveTask { name: kind.name().to_owned(), size, seed: 0 });
                    }
                }
            })
            .response
            .labelled_by(label.id);
        if let Some(task) = task {
            let size = ui.label("cells");
            ui.add(egui::DragValue::new(&mut task.size).range(2..=16)).labelled_by(size.id);
            let seed = ui.label("instance");
            ui.add(egui::DragValue::new(&mut task.seed)).labelled_by(seed.id);
        }
    });
    ui.end_row();
}

/// The device picker: `auto` and the devices by name, with what this build can use.
fn device_row_ui(ui: &mut egui::Ui, device: &mut String) {
    let label = ui.label("Device");
    egui::ComboBox::from_id_salt("live_device")
        .selected_text(device.as_str())
        .show_ui(ui, |ui| {
            for choice in DEVICE_CHOICES {
                ui.selectable_value(device, choice.to_owned(), choice);
            }
        })
        .response
        .labelled_by(label.id)
        .on_hover_text(
            "auto: a CUDA or Metal GPU where this build has one (--features cuda / metal), else the CPU",
        );
    ui.end_row();
}

/// A label and a number field it names.
fn drag_row_ui(ui: &mut egui::Ui, label: &str, value: egui::DragValue<'_>) {
    let label = ui.label(label);
    ui.add(value).labelled_by(label.id);
    ui.end_row();
}
