//! The one error type of the trajectory module: every variant names the file and what is wrong
//! with it, so a message can be shown to the user as it is.

use std::ops::Range;
use std::path::PathBuf;

use super::header::StorageDtype;
use super::names::TensorNameError;

/// What went wrong reading or writing a trajectory file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrajectoryError {
    /// The operating system refused an operation on the file or its directory.
    #[error("{}: cannot {action}: {cause}", .path.display())]
    Io {
        /// The file (or directory) operated on.
        path: PathBuf,
        /// What was being done, e.g. "open the file" or "rename the temporary file into place".
        action: &'static str,
        /// The operating system's error.
        cause: std::io::Error,
    },

    /// The file is too short to hold the 8-byte header length.
    #[error("{}: the file is {file_len} bytes, too short for the 8-byte header length", .path.display())]
    FileTooShort {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        file_len: usize,
    },

    /// The header length is above the limit safetensors readers accept.
    #[error("{}: the header length says {header_len} bytes, above the {limit}-byte limit", .path.display())]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// The declared header length.
        header_len: u64,
        /// The largest header length accepted.
        limit: u64,
    },

    /// The header length points past the end of the file.
    #[error(
        "{}: the header length says {header_len} bytes but only {available} bytes follow it",
        .path.display()
    )]
    HeaderPastEnd {
        /// The file.
        path: PathBuf,
        /// The declared header length.
        header_len: u64,
        /// How many bytes the file has after the 8-byte header length.
        available: usize,
    },

    /// The header is not UTF-8 text.
    #[error("{}: the header is not UTF-8 text: {cause}", .path.display())]
    HeaderNotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the text stops being UTF-8.
        cause: std::str::Utf8Error,
    },

    /// The header is not a safetensors JSON header.
    #[error("{}: the header is not valid safetensors JSON: {cause}", .path.display())]
    HeaderJson {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error, with line and column.
        cause: serde_json::Error,
    },

    /// The header lists a tensor name twice.
    #[error("{}: the header lists tensor `{tensor}` twice", .path.display())]
    DuplicateTensor {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        tensor: String,
    },

    /// A tensor's dtype is not one trajectory files store.
    #[error("{}: tensor `{tensor}` has dtype `{dtype}`; trajectory files store only F32, F16 and BF16", .path.display())]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype as the header spells it.
        dtype: String,
    },

    /// A tensor's declared shape has more bytes than a `usize` can count.
    #[error("{}: tensor `{tensor}` declares shape {shape:?}, whose size in bytes overflows", .path.display())]
    ShapeOverflow {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The declared shape.
        shape: Vec<usize>,
    },

    /// A tensor's data range ends before it starts.
    #[error("{}: tensor `{tensor}` declares offsets {}..{} whose end precedes its start", .path.display(), .range.start, .range.end)]
    OffsetsReversed {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The declared byte range within the data section.
        range: Range<usize>,
    },

    /// A tensor's data range reaches past the end of the file.
    #[error(
        "{}: tensor `{tensor}` declares offsets {}..{} but the data section is {data_len} bytes",
        .path.display(), .range.start, .range.end
    )]
    OffsetsPastEnd {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The declared byte range within the data section.
        range: Range<usize>,
        /// The length of the data section (the file after its header).
        data_len: usize,
    },

    /// A tensor's data range does not have the size its shape and dtype need.
    #[error(
        "{}: tensor `{tensor}` declares shape {shape:?} of {dtype}, which takes {expected_bytes} bytes, \
         but its offsets {}..{} span {} bytes",
        .path.display(), .range.start, .range.end, .range.len()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: StorageDtype,
        /// Its declared shape.
        shape: Vec<usize>,
        /// The byte size the shape and dtype need.
        expected_bytes: usize,
        /// The declared byte range within the data section.
        range: Range<usize>,
    },

    /// Two tensors claim some of the same bytes.
    #[error(
        "{}: tensors `{first}` (offsets {}..{}) and `{second}` (offsets {}..{}) overlap",
        .path.display(), .first_range.start, .first_range.end, .second_range.start, .second_range.end
    )]
    OverlappingTensors {
        /// The file.
        path: PathBuf,
        /// The tensor that starts first.
        first: String,
        /// Its byte range.
        first_range: Range<usize>,
        /// The tensor that starts inside it.
        second: String,
        /// Its byte range.
        second_range: Range<usize>,
    },

    /// Part of the data section belongs to no tensor (safetensors requires the tensors to tile it).
    #[error(
        "{}: bytes {}..{} of the {data_len}-byte data section belong to no tensor",
        .path.display(), .gap.start, .gap.end
    )]
    UncoveredBytes {
        /// The file.
        path: PathBuf,
        /// The uncovered byte range within the data section.
        gap: Range<usize>,
        /// The length of the data section.
        data_len: usize,
    },

    /// The header carries no Stepscope manifest.
    #[error(
        "{}: the header's `__metadata__` has no `{}` entry, so this is not a Stepscope trajectory",
        .path.display(), super::MANIFEST_KEY
    )]
    MissingManifest {
        /// The file.
        path: PathBuf,
    },

    /// The manifest is not valid JSON for its format version.
    #[error("{}: the manifest is not valid: {cause}", .path.display())]
    ManifestJson {
        /// The file.
        path: PathBuf,
        /// The JSON error, naming the field or position.
        cause: serde_json::Error,
    },

    /// The manifest's format version is not one this reader opens.
    #[error(
        "{}: the file has format version {found}; this build of Stepscope reads versions {oldest} to {newest}{}",
        .path.display(), if *.found > u64::from(*.newest) { " (the file is from a newer Stepscope)" } else { "" }
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version the file declares.
        found: u64,
        /// The oldest version this reader opens.
        oldest: u32,
        /// The newest version this reader opens.
        newest: u32,
    },

    /// The manifest contradicts itself (e.g. the wrong number of sigmas for its steps).
    #[error("{}: the manifest is inconsistent: {reason}", .path.display())]
    InvalidManifest {
        /// The file.
        path: PathBuf,
        /// What is inconsistent, naming the field.
        reason: String,
    },

    /// A tensor's name does not follow the naming contract.
    #[error("{}: {cause}", .path.display())]
    BadTensorName {
        /// The file.
        path: PathBuf,
        /// The name and what is wrong with it.
        cause: TensorNameError,
    },

    /// The manifest promises a tensor that is not there.
    #[error("{}: the manifest promises tensor `{tensor}` but there is no such tensor", .path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The promised tensor.
        tensor: String,
    },

    /// A tensor is there that the manifest does not explain.
    #[error("{}: tensor `{tensor}` is not explained by the manifest (seed, step, layer or kind not listed)", .path.display())]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The unexplained tensor.
        tensor: String,
    },

    /// A tensor's shape is not the one the manifest implies.
    #[error("{}: tensor `{tensor}` has shape {found:?} but the manifest implies {expected}", .path.display())]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The implied shape, with `any` for free dimensions.
        expected: String,
        /// The actual shape.
        found: Vec<usize>,
    },

    /// A decoded video to record has not the shape `[3, F, H, W]` of the run's other videos.
    #[error(
        "a decoded video has shape {found:?}; {}",
        .expected.map_or_else(|| "a video is [3, F, H, W]".to_owned(), |shape| format!("the run's other videos are {shape:?}"))
    )]
    VideoShape {
        /// The shape of the videos recorded before, if any.
        expected: Option<[usize; 4]>,
        found: Vec<usize>,
    },

    /// A format-version-2 file has no checksums.
    #[error(
        "{}: the file declares format version 2 but its header has no `{}`: it was not written by a \
         Stepscope writer, or its header was edited",
        .path.display(), super::CHECKSUMS_KEY
    )]
    MissingChecksums {
        /// The file.
        path: PathBuf,
    },

    /// The checksums are malformed, do not match the tensors, or the manifest's does not match.
    #[error("{}: {reason}", .path.display())]
    BadChecksums {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field or tensor.
        reason: String,
    },

    /// A tensor's bytes do not match the checksum written with them.
    #[error(
        "{}: tensor `{tensor}` is corrupt: bytes {}..{} of its data (chunk {} of {}) do not match the \
         checksum written with them",
        .path.display(), .bytes.start, .bytes.end, .chunk_idx + 1, .chunks
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The chunk's index within the tensor.
        chunk_idx: usize,
        /// How many chunks the tensor has.
        chunks: usize,
        /// The chunk's bytes, within the tensor's data.
        bytes: Range<usize>,
    },

    /// A tensor was asked for that the file does not hold.
    #[error("{}: the file holds no tensor `{tensor}`", .path.display())]
    TensorNotFound {
        /// The file.
        path: PathBuf,
        /// The tensor asked for.
        tensor: String,
    },

    /// candle failed to convert a tensor.
    #[error("{}: tensor `{tensor}`: {cause}", .path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// candle's error.
        cause: Box<candle_core::Error>,
    },
}
