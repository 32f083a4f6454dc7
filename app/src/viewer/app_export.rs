//! File > Export: the shown seed over every step it holds, as a contact sheet (PNG) or a step
//! sweep (GIF), in the view's tensor, written where the user picks.

use std::path::Path;

use anyhow::{Context as _, Result};
use stepscope_engine::trajectory::replace_file_with;

use super::app::StepscopeApp;
use super::export::{SweepSpec, contact_sheet, step_sweep_gif, write_png};

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
    fn extension(self) -> &'static str {
        match self {
            Self::ContactSheet => "png",
            Self::StepSweep => "gif",
        }
    }
}

impl StepscopeApp {
    /// The File menu's export entries.
    pub(super) fn export_menu_ui(&mut self, ui: &mut egui::Ui) {
        let open = self.document.is_some();
        let sheet = ui
            .add_enabled(open, egui::Button::new("Export contact sheet…"))
            .on_hover_text("The shown seed over every step (rows) and frame (columns), as a PNG");
        if sheet.clicked() {
            self.export_picture(PictureKind::ContactSheet);
        }
        let sweep = ui
            .add_enabled(open, egui::Button::new("Export step sweep GIF…"))
            .on_hover_text("The shown seed's frames, one animation frame per step");
        if sweep.clicked() {
            self.export_picture(PictureKind::StepSweep);
        }
    }

    /// Asks where, then writes the shown seed as `kind`; the outcome shows in the window.
    pub fn export_picture(&mut self, kind: PictureKind) {
        let Some(document) = &self.document else { return };
        let spec = SweepSpec::all_steps(document, document.seed_idx, self.settings.view, EXPORT_SCALE);
        let default_name =
            format!("seed{}-{}.{}", spec.seed_idx, self.settings.view.label(), kind.extension());
        let Some(path) = self.file_picker.save_picture(&default_name, kind.extension()) else { return };
        let written = match kind {
            PictureKind::ContactSheet => {
                contact_sheet(document, &spec).and_then(|sheet| write_png(&path, &sheet))
            }
            PictureKind::StepSweep => write_gif(&path, document, &spec),
        };
        self.export_status = Some(match written {
            Ok(()) => format!("Exported {}", path.display()),
            Err(err) => format!("Exporting {} failed: {err:#}", path.display()),
        });
    }

    /// The last export's outcome, until dismissed.
    pub(super) fn export_status_ui(&mut self, ui: &mut egui::Ui) {
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

fn write_gif(path: &Path, document: &super::document::Document, spec: &SweepSpec) -> Result<()> {
    let gif = step_sweep_gif(document, spec, GIF_DELAY_MS)?;
    replace_file_with(path, &gif).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
