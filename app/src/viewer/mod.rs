//! The desktop viewer: a trajectory file's frames over the denoising steps.
//!
//! State lives apart from the widgets that draw it, as in rerun: panels and views read the
//! state and push [`command::AppCommand`]s, which the app applies in one place at the end of
//! each frame ([`time_control::TimeControl`] holds the step cursor). The centre shows one of
//! the [`view::View`]s listed in [`views`] (a new view is one file and one line there), each
//! drawing from a [`view::ViewContext`] (document, cursor, shared caches) and saving its own
//! state; [`settings`] is what persists between sessions.

mod app;
mod app_export;
mod app_files;
mod app_frame_pointer;
mod app_live;
mod attention_data;
mod attention_view;
mod chain_view;
mod command;
mod dock;
mod document;
pub mod export;
pub mod figure;
mod file_browser;
pub mod file_picker;
mod frame_grid;
mod frame_levels;
mod frame_player;
mod frame_view;
pub mod gpu;
mod layers_view;
pub mod live;
mod lru;
mod open_runs;
mod picture_jobs;
mod probe_view;
mod runs_list;
mod runs_view;
mod seeds_view;
mod settings;
mod side_panel;
mod stats_cache;
mod stats_worker;
mod step_plot;
mod step_view;
mod stored_attention;
mod sweep;
mod sweep_window;
mod task_panel;
mod tensor_cache;
mod tensor_loader;
pub mod time_control;
mod timeline;
mod view;
mod views;

use std::path::Path;

use anyhow::{Context as _, anyhow};

pub use app::StepscopeApp;
pub use document::Document;
pub use settings::ViewerSettings;
pub use step_view::StepView;
pub use sweep::{Sweep, SweepFailure, SweepRow};

/// What the window opens on.
#[derive(Debug, Clone)]
pub enum Startup {
    /// Trajectory files (or a folder of them, a sweep), opened in order: the last one is shown.
    Files(Vec<std::path::PathBuf>),
    /// A live run, started at once.
    Live(Box<live::LiveSetup>),
}

/// Opens the window on the trajectory at `path` and runs until it closes.
pub fn run_native(path: &Path) -> anyhow::Result<()> {
    run_window(Startup::Files(vec![path.to_owned()]))
}

/// Opens the window on `startup` and runs until it closes.
pub fn run_window(startup: Startup) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Stepscope")
            .with_app_id("stepscope")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([480.0, 320.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "Stepscope",
        options,
        Box::new(move |cc| {
            let picker = Box::new(file_picker::NativeFilePicker::default());
            Ok(Box::new(match startup {
                Startup::Files(paths) => {
                    let mut app = StepscopeApp::new(cc, None, picker);
                    for path in &paths {
                        app.open(path);
                    }
                    app
                }
                Startup::Live(setup) => {
                    let mut app = StepscopeApp::new(cc, None, picker);
                    app.start_live(&cc.egui_ctx, *setup);
                    app
                }
            }))
        }),
    )
    .map_err(|err| anyhow!("{err}"))
    .context("running the window")
}
