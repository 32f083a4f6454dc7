//! Reading a trajectory file lazily: opening parses and checks the header only; tensor data is
//! read from the memory map when a tensor is asked for.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use memmap2::Mmap;
use serde::Deserialize;

use super::checksums::{CHECKSUMS_KEY, Checksums};
use super::error::TrajectoryError;
use super::header::{self, StorageDtype, TensorInfo};
use super::manifest::Manifest;
use super::names::{CaptureKind, TensorName};
use super::{FORMAT_VERSION, MANIFEST_KEY, OLDEST_READABLE_VERSION};

/// An open trajectory file.
///
/// [`open`](Self::open) maps the file and checks its header, manifest and checksums' layout
/// completely, so every later accessor can trust them; opening a multi-gigabyte file costs only
/// its header. Tensors come back as `f32` CPU tensors whatever their stored dtype, and every
/// read checks the checksums of the chunks it reads (each chunk once per open file).
#[derive(Debug)]
pub struct TrajectoryReader {
    path: PathBuf,
    bytes: FileBytes,
    data_start: usize,
    manifest: Manifest,
    tensors: BTreeMap<TensorName, TensorInfo>,
    /// `None` for a version-1 file, which has none: its data is unverified.
    checksums: Option<Checksums>,
}

impl TrajectoryReader {
    /// Opens the trajectory file at `path` and checks its header and manifest.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TrajectoryError> {
        let path = path.as_ref();
        let io_error = |action, source| TrajectoryError::Io { path: path.to_owned(), action, cause: source };
        let file = File::open(path).map_err(|source| io_error("open the file", source))?;
        if path.is_dir() {
            let folder = std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a folder, not a trajectory file",
            );
            return Err(io_error("read it", folder));
        }
        let mmap = map_file(&file).map_err(|source| io_error("memory-map the file", source))?;
        Self::from_file_bytes(path, FileBytes::Mapped(mmap))
    }

    /// Reads a trajectory held in memory, `bytes` being the whole file, checked as
    /// [`Self::open`] checks a file; `path` only names it in errors.
    pub fn from_bytes(path: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self, TrajectoryError> {
        Self::from_file_bytes(path.as_ref(), FileBytes::Owned(bytes))
    }

    fn from_file_bytes(path: &Path, bytes: FileBytes) -> Result<Self, TrajectoryError> {
        let layout = header::parse_layout(path, &bytes)?;
        let manifest_json = layout
            .metadata
            .get(MANIFEST_KEY)
            .ok_or_else(|| TrajectoryError::MissingManifest { path: path.to_owned() })?;
        let manifest = parse_manifest(path, manifest_json)?;

        let tensors = layout
            .tensors
            .into_iter()
            .map(|(name, info)| {
                let name = name.parse::<TensorName>().map_err(|source| TrajectoryError::BadTensorName {
                    path: path.to_owned(),
                    cause: source,
                })?;
                Ok((name, info))
            })
            .collect::<Result<BTreeMap<_, _>, TrajectoryError>>()?;
        let shapes = tensors.iter().map(|(name, info)| (name, info.shape.as_slice()));
        manifest
            .check_tensor_set(shapes, |name| tensors.contains_key(name))
            .map_err(|mismatch| mismatch.into_error(path))?;
        let checksums = match layout.metadata.get(CHECKSUMS_KEY) {
            Some(json) => Some(
                Checksums::parse(json, manifest_json, &tensors)
                    .map_err(|reason| TrajectoryError::BadChecksums { path: path.to_owned(), reason })?,
            ),
            None if manifest.format_version >= 2 => {
                return Err(TrajectoryError::MissingChecksums { path: path.to_owned() });
            }
            None => None,
        };

        Ok(Self { path: path.to_owned(), bytes, data_start: layout.data_start, manifest, tensors, checksums })
    }

    /// Whether the file carries checksums (format version 2 on): its reads are checked. A
    /// version-1 file's are not.
    #[must_use]
    pub fn is_checksummed(&self) -> bool {
        self.checksums.is_some()
    }

    /// The bytes of tensor `name` (whole), unchecked; `None` if the file holds no such tensor.
    pub(super) fn tensor_bytes(&self, name: &TensorName) -> Option<&[u8]> {
        let info = self.tensors.get(name)?;
        // `open` checked the range against the data section; `get` keeps this panic-free anyway.
        self.data_start
            .checked_add(info.data_range.start)
            .zip(self.data_start.checked_add(info.data_range.end))
            .and_then(|(start, end)| self.bytes.get(start..end))
    }

    /// The bytes of tensor `name` (whole), after checking the chunks that `range` (bytes
    /// within them) overlaps against the file's checksums.
    pub(super) fn checked_bytes(
        &self,
        name: &TensorName,
        range: Range<usize>,
    ) -> Result<&[u8], TrajectoryError> {
        let bytes = self.tensor_bytes(name).ok_or_else(|| TrajectoryError::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_string(),
        })?;
        if let Some(checksums) = &self.checksums {
            checksums.check(name, bytes, range).map_err(|mismatch| TrajectoryError::Corrupt {
                path: self.path.clone(),
                tensor: name.to_string(),
                chunk_idx: mismatch.chunk_idx,
                chunks: mismatch.chunks,
                bytes: mismatch.bytes,
            })?;
        }
        Ok(bytes)
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The file's length in bytes.
    #[must_use]
    pub fn file_len(&self) -> usize {
        self.bytes.len()
    }

    /// Every tensor name in the file, in file order (by seed, then step).
    #[must_use]
    pub fn tensor_names(&self) -> impl ExactSizeIterator<Item = &TensorName> + '_ {
        self.tensors.keys()
    }

    /// How the tensor `name` is stored, or `None` when the file does not hold it.
    #[must_use]
    pub fn tensor_info(&self, name: &TensorName) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// The tensor with the string name `name` (e.g. `"s0/k3/x0"`), as `f32` on the CPU.
    pub fn tensor(&self, name: &str) -> Result<Tensor, TrajectoryError> {
        let parsed = name.parse::<TensorName>().map_err(|_| TrajectoryError::TensorNotFound {
            path: self.path.clone(),
            tensor: name.to_owned(),
        })?;
        self.load(&parsed)
    }

    /// The tensor `name`, as `f32` on the CPU. Reads (and converts) its bytes from the file.
    pub fn load(&self, name: &TensorName) -> Result<Tensor, TrajectoryError> {
        let (values, shape) = self.load_values(name)?;
        Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).map_err(|source| TrajectoryError::Tensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            cause: Box::new(source),
        })
    }

    /// The values of tensor `name` as `f32`, row-major, with its shape: [`Self::load`] without
    /// the tensor around them (one copy less for a caller that wants the values).
    pub fn load_values(&self, name: &TensorName) -> Result<(Vec<f32>, Vec<usize>), TrajectoryError> {
        let not_found =
            || TrajectoryError::TensorNotFound { path: self.path.clone(), tensor: name.to_string() };
        let info = self.tensors.get(name).ok_or_else(not_found)?;
        let bytes = self.checked_bytes(name, 0..info.data_range.len())?;
        Ok((decode_f32(bytes, info.dtype), info.shape.clone()))
    }

    /// The shape tensor `name` is stored with, without reading it; `None` if the file holds
    /// no such tensor.
    #[must_use]
    pub fn shape_of(&self, name: &TensorName) -> Option<&[usize]> {
        self.tensors.get(name).map(|info| info.shape.as_slice())
    }

    /// Frame `frame_idx` of the video tensor `name` (`[C, F, H, W]`, or `[F, H, W]` read as one
    /// channel) as `f32`, `[C, H, W]` row-major: its `C` planes read from the memory map
    /// without touching the other frames, so that a view of a few frames of a decoded
    /// 81 x 480 x 832 step reads a few megabytes, not 388.
    pub fn load_frame(
        &self,
        name: &TensorName,
        frame_idx: usize,
    ) -> Result<(Vec<f32>, [usize; 3]), TrajectoryError> {
        let not_found =
            || TrajectoryError::TensorNotFound { path: self.path.clone(), tensor: name.to_string() };
        let info = self.tensors.get(name).ok_or_else(not_found)?;
        let [channels, frames, height, width] = match info.shape.as_slice() {
            &[c, f, h, w] => [c, f, h, w],
            &[f, h, w] => [1, f, h, w],
            other => {
                return Err(TrajectoryError::WrongShape {
                    path: self.path.clone(),
                    tensor: name.to_string(),
                    expected: "[C, F, H, W] or [F, H, W]".to_owned(),
                    found: other.to_vec(),
                });
            }
        };
        if frame_idx >= frames {
            return Err(TrajectoryError::WrongShape {
                path: self.path.clone(),
                tensor: name.to_string(),
                expected: format!("more than {frame_idx} frames"),
                found: info.shape.clone(),
            });
        }
        let value_bytes = info.dtype.size_in_bytes();
        // `open` checked that the shape's byte size fits the tensor's range, so these products
        // do not overflow; `get` keeps the slicing panic-free anyway.
        let plane_bytes = height * width * value_bytes;
        let mut values = Vec::with_capacity(channels * height * width);
        for channel_idx in 0..channels {
            let start = (channel_idx * frames + frame_idx) * plane_bytes;
            let plane = start..start + plane_bytes;
            let bytes = self.checked_bytes(name, plane.clone())?;
            values.extend(decode_f32(bytes.get(plane).ok_or_else(not_found)?, info.dtype));
        }
        Ok((values, [channels, height, width]))
    }

    /// The latents entering step `step_idx` of seed `seed_idx`, `[C, F, H, W]`.
    pub fn latents(&self, seed_idx: usize, step_idx: usize) -> Result<Tensor, TrajectoryError> {
        self.load(&TensorName::latents(seed_idx, step_idx))
    }

    /// The velocity predicted at step `step_idx` of seed `seed_idx`, `[C, F, H, W]`.
    pub fn velocity(&self, seed_idx: usize, step_idx: usize) -> Result<Tensor, TrajectoryError> {
        self.load(&TensorName::velocity(seed_idx, step_idx))
    }

    /// The predicted clean latents at step `step_idx` of seed `seed_idx`, `[C, F, H, W]`.
    pub fn x0(&self, seed_idx: usize, step_idx: usize) -> Result<Tensor, TrajectoryError> {
        self.load(&TensorName::x0(seed_idx, step_idx))
    }

    /// The latents after the last step of seed `seed_idx`, `[C, F, H, W]`.
    pub fn final_latents(&self, seed_idx: usize) -> Result<Tensor, TrajectoryError> {
        self.load(&TensorName::Final { seed_idx })
    }

    /// The capture `kind` of transformer block `layer_idx` at step `step_idx` of seed `seed_idx`
    /// (shapes in [`CaptureKind`]).
    pub fn capture(
        &self,
        seed_idx: usize,
        step_idx: usize,
        layer_idx: usize,
        kind: CaptureKind,
    ) -> Result<Tensor, TrajectoryError> {
        self.load(&TensorName::Capture { seed_idx, step_idx, layer_idx, kind })
    }

    /// A plain-words description of the file: its manifest, then its size and storage dtypes.
    /// What `stepscope info FILE` prints.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut count_by_dtype = BTreeMap::<StorageDtype, usize>::new();
        for info in self.tensors.values() {
            *count_by_dtype.entry(info.dtype).or_default() += 1;
        }
        let dtypes: Vec<String> =
            count_by_dtype.iter().map(|(dtype, count)| format!("{count} {dtype}")).collect();
        let integrity = match &self.checksums {
            Some(checksums) => format!(
                "CRC-32 per {} KiB chunk of every tensor and of the manifest, checked as data is \
                 read (`stepscope info --verify` checks all)",
                checksums.chunk_bytes() >> 10
            ),
            None => format!(
                "unverified: format version {} files carry no checksums",
                self.manifest.format_version
            ),
        };
        format!(
            "File: {} ({}), {} tensors ({})\nIntegrity: {integrity}\n{}",
            self.path.display(),
            super::describe::format_bytes(self.file_len()),
            self.tensors.len(),
            dtypes.join(", "),
            self.manifest
        )
    }
}

/// A file's bytes: mapped from disk, or held in memory.
#[derive(Debug)]
enum FileBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(mmap) => mmap,
            Self::Owned(bytes) => bytes,
        }
    }
}

#[expect(
    unsafe_code,
    reason = "mapping a file is unsafe because another process may truncate or rewrite it while it is \
              mapped; like every safetensors reader we accept that. Stepscope's own writer never \
              modifies a file in place (it renames a new one over it), so it cannot cause this."
)]
fn map_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: see the `expect` reason above; the map is only ever read.
    unsafe { Mmap::map(file) }
}

impl Manifest {
    /// Parses and checks a manifest's JSON text, as a reader does when it opens a file; `path`
    /// names the file in errors.
    pub fn from_json(json: &str, path: &Path) -> Result<Self, TrajectoryError> {
        parse_manifest(path, json)
    }
}

/// Parses the manifest: reads the format version first, so that a file from a newer Stepscope
/// is reported as such rather than as a manifest with unknown fields.
fn parse_manifest(path: &Path, json: &str) -> Result<Manifest, TrajectoryError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        format_version: u64,
    }

    let manifest_error = |source| TrajectoryError::ManifestJson { path: path.to_owned(), cause: source };
    let probe: VersionProbe = serde_json::from_str(json).map_err(manifest_error)?;
    let manifest: Manifest = match probe.format_version {
        // Version 2 added checksums beside the manifest; the manifest itself is version 1's.
        1 | 2 => serde_json::from_str(json).map_err(manifest_error)?,
        found => {
            return Err(TrajectoryError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                oldest: OLDEST_READABLE_VERSION,
                newest: FORMAT_VERSION,
            });
        }
    };
    manifest.check().map_err(|reason| TrajectoryError::InvalidManifest { path: path.to_owned(), reason })?;
    Ok(manifest)
}

/// Decodes little-endian elements of `dtype` to `f32`. The output's size is that of `bytes`,
/// which lie inside the file.
pub(super) fn decode_f32(bytes: &[u8], dtype: StorageDtype) -> Vec<f32> {
    match dtype {
        StorageDtype::F32 => {
            bytes.as_chunks::<4>().0.iter().map(|chunk| f32::from_le_bytes(*chunk)).collect()
        }
        StorageDtype::F16 => {
            bytes.as_chunks::<2>().0.iter().map(|chunk| half::f16::from_le_bytes(*chunk).to_f32()).collect()
        }
        StorageDtype::Bf16 => {
            bytes.as_chunks::<2>().0.iter().map(|chunk| half::bf16::from_le_bytes(*chunk).to_f32()).collect()
        }
    }
}
