//! Shared helpers for the workspace-level integration tests.
use std::path::PathBuf;

/// Path of a file under `tests/fixtures/`.
#[must_use]
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(relative)
}

/// Largest absolute elementwise difference between two same-shaped tensors, in f32.
///
/// # Panics
/// If the shapes differ or the tensors cannot be read: a test failure either way.
#[must_use]
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let f32_of = |t: &candle_core::Tensor| t.to_dtype(candle_core::DType::F32);
    let largest = (|| (f32_of(a)? - f32_of(b)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())();
    largest.expect("tensors comparable in f32")
}

/// Path of a file under `tests/golden/` (committed files that later versions must keep reading).
#[must_use]
pub fn golden(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden").join(relative)
}
