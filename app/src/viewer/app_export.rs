//! File > Export: the shown seed over every step it holds, as a contact sheet (PNG) or a step
//! sweep (GIF), in the view's tensor; and pictures of the window itself (the view, the whole
//! window, the probe window) as PNG. Each is written where the user picks.

use std::path::{Path, PathBuf};

use anyhow::Result;
use stepscope_engine::trajectory::replace_file_with;

use super::app::StepscopeApp;
use super::app_files::FileRequest;
use super::export::{SweepSpec, SweepTensors, contact_sheet_figure, step_sweep_gif, write_png};

/// Output pixels per latent pixel in exported pictures.
const EXPORT_SCALE: u32 = 8;
/// Milliseconds per step in an exported GIF.
const GIF_DELAY_MS: u32 = 250;

/// What File > Export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    /// Steps down, frames across (PNG).
    ContactSheet,
    /// One animation frame per step (GIF).
    StepSweep,
}

impl PictureKind {
    pub(super) fn extension(self) -> &'static str {
        match self {
            Self::ContactSheet => "png",
            Self::StepSweep => "gif",
        }
    }
}

/// Which part of the window a PNG capture keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureTarget {
    /// The central view below its tabs (frames, layers or the seed comparison, with its plots).
    View,
    /// Everything: menu, side panel, view, timeline and open windows.
    Window,
    /// The probe window (heatmap and legend).
    ProbeWindow,
}

impl StepscopeApp {
    /// The File menu's export entries.
    pub(super) fn export_menu_ui(&mut self, ui: &mut egui::Ui) {
        let open = self.document.is_some();
        let view = egui::Button::new("Save view as PNG…").shortcut_text("Ctrl+Shift+S");
        let view = ui
            .add_enabled(open, view)
            .on_hover_text("The central view as shown (frames, layers or seeds, with their plots)");
        if view.clicked() {
            self.ask_capture(ui.ctx(), CaptureTarget::View, "view.png");
        }
        if ui.button("Save window as PNG…").on_hover_text("The whole window as shown").clicked() {
            self.ask_capture(ui.ctx(), CaptureTarget::Window, "stepscope.png");
        }
        let sheet = ui
            .add_enabled(open, egui::Button::new("Export contact sheet…"))
            .on_hover_text("The shown seed over every step (rows) and frame (columns), as a PNG");
        if sheet.clicked() {
            self.export_picture(ui.ctx(), PictureKind::ContactSheet);
        }
        let sweep = ui
            .add_enabled(open, egui::Button::new("Export step sweep GIF…"))
            .on_hover_text("The shown seed's frames, one animation frame per step");
        if sweep.clicked() {
            self.export_picture(ui.ctx(), PictureKind::StepSweep);
        }
    }

    /// Asks where to write the shown seed as `kind`, then writes it ([`Self::export_picture_to`]).
    pub fn export_picture(&mut self, ctx: &egui::Context, kind: PictureKind) {
        let Some(document) = &self.document else { return };
        let default_name =
            format!("seed{}-{}.{}", document.seed_idx, self.settings.view.label(), kind.extension());
        self.request_file(ctx, FileRequest::ExportPicture { kind, default_name });
    }

    /// Writes the shown seed as `kind` to `path`: the tensors are read, and the picture drawn
    /// and written, on a worker thread (a real-size run's 50 steps are 420 MB to read); the
    /// outcome shows in the window.
    pub(super) fn export_picture_to(&mut self, ctx: &egui::Context, kind: PictureKind, path: PathBuf) {
        let Some(document) = &self.document else { return };
        let spec = SweepSpec::all_steps(document, document.seed_idx, self.settings.view, EXPORT_SCALE);
        let (source, title) = (document.shared_source(), document.title());
        self.pictures.spawn(ctx, move || {
            let tensors = match SweepTensors::load(source.as_ref(), &title, &spec) {
                Ok(tensors) => tensors,
                Err(err) => return format!("Exporting {} failed: {err:#}", path.display()),
            };
            let warnings = tensors.non_finite_warnings();
            let written = match kind {
                PictureKind::ContactSheet => {
                    contact_sheet_figure(&tensors).and_then(|sheet| write_png(&path, &sheet))
                }
                PictureKind::StepSweep => write_gif(&path, &tensors),
            };
            match written {
                Ok(()) if warnings.is_empty() => format!("Exported {}", path.display()),
                Ok(()) => format!("Exported {}. Warning: {}", path.display(), warnings.join("; ")),
                Err(err) => format!("Exporting {} failed: {err:#}", path.display()),
            }
        });
    }

    /// Asks where to save a PNG of `target`; the picture is taken at the end of the frame after
    /// the answer.
    pub(super) fn ask_capture(&mut self, ctx: &egui::Context, target: CaptureTarget, default_name: &str) {
        let default_name = default_name.to_owned();
        self.request_file(ctx, FileRequest::Capture { target, default_name });
    }

    /// Takes the screenshot for a capture asked for in the last frame.
    pub(super) fn capture(&mut self, ctx: &egui::Context, target: CaptureTarget, path: PathBuf) {
        let region = match target {
            CaptureTarget::View => self.view_rect,
            CaptureTarget::Window => Some(ctx.content_rect()),
            CaptureTarget::ProbeWindow => self.probe_rect,
        };
        match region {
            Some(region) => {
                self.pictures.capture(ctx, region, path);
                ctx.request_repaint();
            }
            None => self.export_status = Some(format!("Nothing to save: the {target:?} is not shown")),
        }
    }

    /// Shows the outcome of finished picture jobs.
    pub(super) fn poll_pictures(&mut self) {
        while let Some(line) = self.pictures.poll() {
            self.export_status = Some(line);
        }
    }

    /// "Writing…" while a picture job runs, then the last outcome, until dismissed.
    pub(super) fn export_status_ui(&mut self, ui: &mut egui::Ui) {
        if self.pictures.busy() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(egui::RichText::new("Writing the picture…").small());
            });
        }
        let Some(status) = &self.export_status else { return };
        let dismissed = ui
            .horizontal(|ui| {
                ui.label(egui::RichText::new(status).small());
                ui.small_button("Dismiss").clicked()
            })
            .inner;
        if dismissed {
            self.export_status = None;
        }
    }
}

fn write_gif(path: &Path, tensors: &SweepTensors) -> Result<()> {
    let gif = step_sweep_gif(tensors, GIF_DELAY_MS)?;
    replace_file_with(path, &gif)?;
    Ok(())
}
