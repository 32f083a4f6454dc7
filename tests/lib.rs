//! Shared helpers for the workspace-level integration tests.
use std::path::PathBuf;

/// Path of a file under `tests/fixtures/`.
#[must_use]
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(relative)
}

/// Path of a file under `tests/golden/` (committed files that later versions must keep reading).
#[must_use]
pub fn golden(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden").join(relative)
}
