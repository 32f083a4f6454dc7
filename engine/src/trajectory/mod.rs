//! The trajectory file format: one denoising run (several seeds, every step, optional captures
//! inside the transformer) in one safetensors file that Python's `safetensors` package reads as is.
//!
//! The safetensors header's `__metadata__` carries a JSON [`Manifest`] under [`MANIFEST_KEY`];
//! tensors are named by the contract in [`TensorName`]. The full specification, which this
//! module implements, is `engine/TRAJECTORY_FORMAT.md`.
//!
//! - [`TrajectoryWriter`] collects candle tensors and writes the file atomically.
//! - [`TrajectoryReader`] memory-maps a file, checks its header and manifest completely, and
//!   reads tensors (as `f32`) only when asked.
//! - Every failure is a [`TrajectoryError`] naming the file and what is wrong; no input makes
//!   the reader panic or allocate more than the file's own size.

pub(crate) mod atomic;
mod checksums;
mod describe;
mod error;
mod header;
mod manifest;
mod names;
mod reader;
mod verify;
mod writer;

#[cfg(test)]
mod integrity_tests;
#[cfg(test)]
mod tests;

pub use atomic::replace_file_with;
pub use checksums::{CHECKSUMS_KEY, CHUNK_BYTES, ChunkMismatch, chunk_crcs, crc32};
pub use error::TrajectoryError;
pub use header::{StorageDtype, TensorInfo};
pub use manifest::{
    Captures, Conditioning, ForkPoint, Intervention, MAX_ENSEMBLE_MEMBERS, Manifest, ModelInfo, NoiseSource,
    Schedule, SchedulerKind, SeedRecord, TaskInfo, VideoInfo,
};
pub use names::{CaptureKind, StepTensor, TensorName, TensorNameError};
pub use reader::TrajectoryReader;
pub use verify::{NonFinite, TensorCheck};
pub use writer::TrajectoryWriter;

/// The format version this build writes. Version 2 adds checksums ([`CHECKSUMS_KEY`]) to
/// version 1; its manifest is version 1's.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this build reads. A reader of version N reads N and N - 1: a
/// version-1 file (no checksums) opens as unverified.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// The `__metadata__` key whose value is the manifest's JSON text.
pub const MANIFEST_KEY: &str = "stepscope.manifest";

/// The writer name this build puts in [`Manifest::created_by`].
pub const CREATED_BY: &str = concat!("stepscope-engine ", env!("CARGO_PKG_VERSION"));
