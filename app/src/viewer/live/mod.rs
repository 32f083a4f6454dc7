//! Live stepping: a model run one denoising step at a time on the engine thread, shown as it
//! arrives and saved on request.

mod controls;
mod decoder;
mod dialog;
mod intervene;
mod loader;
mod session;
mod setup;

pub use controls::{LiveAction, live_controls_ui};
pub use decoder::{Decoded, LiveDecoder};
pub use dialog::NewRunDialog;
pub use intervene::{Brush, InterveneRequest, InterveneState, PaintColour, intervene_ui};
pub use loader::{LoadedRun, PendingLoad};
pub use session::{Activity, AttentionAnswer, LiveSession};
pub use setup::{LiveSetup, LiveTask, builtin_model_dir, provenance};
