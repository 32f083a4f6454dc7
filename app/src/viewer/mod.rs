//! The desktop viewer: a trajectory file's frames over the denoising steps.
//!
//! State lives apart from the widgets that draw it: [`time_control::TimeControl`] holds the
//! step cursor and changes only through [`time_control::TimeCommand`]s; [`settings`] is what
//! persists between sessions; [`frame_cache`] holds the uploaded textures. Each panel is a
//! `*_ui` function in its own module.

mod app;
pub mod file_picker;
mod frame_cache;
mod frame_view;
pub mod gpu;
pub mod latent_rgb;
mod settings;
mod side_panel;
pub mod time_control;
mod timeline;
mod trajectory;

use std::path::Path;

use anyhow::{Context as _, anyhow};

pub use app::StepscopeApp;
pub use settings::{StepView, ViewerSettings};

/// Opens the window on the trajectory at `path` and runs until it closes.
pub fn run_native(path: &Path) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Stepscope")
            .with_app_id("stepscope")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([480.0, 320.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let path = path.to_owned();
    eframe::run_native(
        "Stepscope",
        options,
        Box::new(move |cc| {
            Ok(Box::new(StepscopeApp::new(cc, Some(&path), Box::new(file_picker::NativeFilePicker))))
        }),
    )
    .map_err(|err| anyhow!("{err}"))
    .context("running the window")
}
