//! Shared helpers for the workspace-level integration tests.
use std::path::PathBuf;

/// Path of a file under `tests/fixtures/`.
#[must_use]
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(relative)
}
