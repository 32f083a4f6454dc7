//! Stepscope's desktop app: an eframe window that scrubs the denoising steps of a trajectory
//! file. The `stepscope` binary opens it, or with a subcommand runs the engine headless.

pub mod first_frame;
pub mod viewer;

use std::path::PathBuf;

/// The built-in sample trajectory (`assets/sample.safetensors` in the repository).
#[must_use]
pub fn sample_trajectory_path() -> PathBuf {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample.safetensors");
    std::fs::canonicalize(&sample).unwrap_or(sample)
}
