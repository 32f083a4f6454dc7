//! Writing a trajectory file: collect tensors under their names, then write them all at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use candle_core::{Device, Tensor};

use super::atomic;
use super::checksums::{self, CHECKSUMS_KEY, CHUNK_BYTES};
use super::error::TrajectoryError;
use super::header::{self, EntryOut, MAX_HEADER_BYTES, StorageDtype};
use super::manifest::Manifest;
use super::names::TensorName;
use super::{FORMAT_VERSION, MANIFEST_KEY};

/// Collects the tensors of one run and writes them, with their manifest, as a trajectory file.
///
/// Nothing touches the disk before [`write`](Self::write), which first checks that the tensors
/// are exactly the ones the manifest promises, with the shapes it implies.
///
/// ```no_run
/// # use stepscope_engine::trajectory::{Manifest, StorageDtype, TensorName, TrajectoryWriter};
/// # fn record(manifest: Manifest, x0: candle_core::Tensor) -> Result<(), Box<dyn std::error::Error>> {
/// let mut writer = TrajectoryWriter::new(manifest).with_storage(StorageDtype::F16);
/// writer.insert(TensorName::x0(0, 3), x0);
/// // ... every other tensor the manifest promises ...
/// writer.write("run.safetensors")?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TrajectoryWriter {
    manifest: Manifest,
    default_storage: StorageDtype,
    tensors: BTreeMap<TensorName, PendingTensor>,
}

/// The tensors in the order their bytes follow each other in the data section.
type DataOrder<'a> = Vec<(&'a TensorName, &'a PendingTensor)>;

#[derive(Debug, Clone)]
struct PendingTensor {
    tensor: Tensor,
    storage: StorageDtype,
}

impl TrajectoryWriter {
    /// A writer for a run described by `manifest`, storing tensors as `f32` unless told otherwise.
    #[must_use]
    pub fn new(manifest: Manifest) -> Self {
        Self { manifest, default_storage: StorageDtype::F32, tensors: BTreeMap::new() }
    }

    /// Stores tensors inserted with [`insert`](Self::insert) as `storage` (converting on write).
    #[must_use]
    pub fn with_storage(mut self, storage: StorageDtype) -> Self {
        self.default_storage = storage;
        self
    }

    /// The manifest the file will carry.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest, for updating as the run goes (e.g. appending recorded steps).
    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Adds (or replaces) the tensor `name`, to be stored in the writer's default dtype. Returns
    /// the tensor it replaced, if any. The tensor may have any dtype and live on any device.
    pub fn insert(&mut self, name: TensorName, tensor: Tensor) -> Option<Tensor> {
        self.insert_as(name, tensor, self.default_storage)
    }

    /// Adds (or replaces) the tensor `name`, to be stored as `storage`.
    pub fn insert_as(&mut self, name: TensorName, tensor: Tensor, storage: StorageDtype) -> Option<Tensor> {
        self.tensors.insert(name, PendingTensor { tensor, storage }).map(|pending| pending.tensor)
    }

    /// Removes the tensor `name` (e.g. when a live run is rewound), returning it.
    pub fn remove(&mut self, name: &TensorName) -> Option<Tensor> {
        self.tensors.remove(name).map(|pending| pending.tensor)
    }

    /// The tensor collected as `name`, if any (as inserted, before any storage conversion).
    #[must_use]
    pub fn get(&self, name: &TensorName) -> Option<&Tensor> {
        self.tensors.get(name).map(|pending| &pending.tensor)
    }

    /// Number of tensors collected so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor has been collected yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Checks the collected tensors against the manifest and writes the file atomically: on any
    /// error, a file already at `path` is left as it was. The header goes first with placeholder
    /// checksums (as long as the real ones), the data after it, then the header again with the
    /// checksums of the bytes written.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), TrajectoryError> {
        let path = path.as_ref();
        self.check(path)?;
        let manifest_json = serde_json::to_string(&self.manifest)
            .map_err(|source| TrajectoryError::ManifestJson { path: path.to_owned(), cause: source })?;
        let manifest_crc = checksums::crc32(manifest_json.as_bytes());
        let (entries, order) = self.layout(path)?;
        let placeholders: Vec<_> = entries
            .iter()
            .map(|entry| {
                (entry.name.clone(), Err(checksums::chunk_count(entry.data_range.len(), CHUNK_BYTES)))
            })
            .collect();
        let header =
            encode_header(path, &manifest_json, &checksums::encode(manifest_crc, &placeholders), &entries)?;
        let io_error =
            |action| move |source| TrajectoryError::Io { path: path.to_owned(), action, cause: source };
        atomic::replace_file(path, |out| {
            out.write_all(&header).map_err(io_error("write the header"))?;
            let mut crcs = Vec::with_capacity(order.len());
            for (name, pending) in order {
                crcs.push((name.to_string(), Ok(write_data(out, path, name, pending)?)));
            }
            let checked =
                encode_header(path, &manifest_json, &checksums::encode(manifest_crc, &crcs), &entries)?;
            if checked.len() != header.len() {
                let changed =
                    std::io::Error::other("the header with checksums is not as long as its placeholder");
                return Err(io_error("write the checksums")(changed));
            }
            out.seek(SeekFrom::Start(0)).map_err(io_error("write the checksums"))?;
            out.write_all(&checked).map_err(io_error("write the checksums"))
        })
    }

    /// Checks the manifest and that the tensors are exactly the promised ones.
    fn check(&self, path: &Path) -> Result<(), TrajectoryError> {
        let invalid = |reason| TrajectoryError::InvalidManifest { path: path.to_owned(), reason };
        if self.manifest.format_version != FORMAT_VERSION {
            return Err(invalid(format!(
                "`format_version` is {} but this writer writes version {FORMAT_VERSION}",
                self.manifest.format_version
            )));
        }
        self.manifest.check().map_err(invalid)?;
        let shapes = self.tensors.iter().map(|(name, pending)| (name, pending.tensor.dims()));
        self.manifest
            .check_tensor_set(shapes, |name| self.tensors.contains_key(name))
            .map_err(|mismatch| mismatch.into_error(path))
    }

    /// Lays the tensors out: widest dtype first, so every tensor starts aligned to its element
    /// size; then in name order. Returns the header entries and the tensors in data order.
    fn layout(&self, path: &Path) -> Result<(Vec<EntryOut<'_>>, DataOrder<'_>), TrajectoryError> {
        let mut order: DataOrder<'_> = self.tensors.iter().collect();
        order.sort_by_key(|&(name, pending)| (std::cmp::Reverse(pending.storage.size_in_bytes()), *name));

        let mut entries = Vec::with_capacity(order.len());
        let mut offset = 0_usize;
        for &(name, pending) in &order {
            let shape = pending.tensor.dims();
            let end = header::byte_size(shape, pending.storage)
                .and_then(|bytes| offset.checked_add(bytes))
                .ok_or_else(|| TrajectoryError::ShapeOverflow {
                path: path.to_owned(),
                tensor: name.to_string(),
                shape: shape.to_vec(),
            })?;
            entries.push(EntryOut {
                name: name.to_string(),
                dtype: pending.storage,
                shape,
                data_range: offset..end,
            });
            offset = end;
        }
        Ok((entries, order))
    }
}

/// The header bytes (length prefix included) of a file holding `entries`, with the manifest
/// `manifest_json` and the checksums `checksums_json` in its metadata.
fn encode_header(
    path: &Path,
    manifest_json: &str,
    checksums_json: &str,
    entries: &[EntryOut<'_>],
) -> Result<Vec<u8>, TrajectoryError> {
    let metadata = BTreeMap::from([(MANIFEST_KEY, manifest_json), (CHECKSUMS_KEY, checksums_json)]);
    let header = header::encode_header(&metadata, entries)
        .map_err(|source| TrajectoryError::ManifestJson { path: path.to_owned(), cause: source })?;
    let header_len = (header.len() - header::LENGTH_PREFIX_BYTES) as u64;
    if header_len > MAX_HEADER_BYTES {
        return Err(TrajectoryError::HeaderTooLarge {
            path: path.to_owned(),
            header_len,
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(header)
}

/// Converts one tensor to its storage dtype on the CPU and writes its bytes, little-endian;
/// returns the CRC-32 of each [`CHUNK_BYTES`] chunk of them.
fn write_data(
    out: &mut BufWriter<File>,
    path: &Path,
    name: &TensorName,
    pending: &PendingTensor,
) -> Result<Vec<u32>, TrajectoryError> {
    let candle_error = |source| TrajectoryError::Tensor {
        path: path.to_owned(),
        tensor: name.to_string(),
        cause: Box::new(source),
    };
    let io_error =
        |source| TrajectoryError::Io { path: path.to_owned(), action: "write tensor data", cause: source };
    let flat = pending
        .tensor
        .to_device(&Device::Cpu)
        .and_then(|tensor| tensor.to_dtype(pending.storage.candle_dtype()))
        .and_then(|tensor| tensor.flatten_all())
        .map_err(candle_error)?;
    let bytes = match pending.storage {
        StorageDtype::F32 => encode_elements(flat.to_vec1().map_err(candle_error)?, f32::to_le_bytes),
        StorageDtype::F16 => encode_elements(flat.to_vec1().map_err(candle_error)?, half::f16::to_le_bytes),
        StorageDtype::Bf16 => encode_elements(flat.to_vec1().map_err(candle_error)?, half::bf16::to_le_bytes),
    };
    out.write_all(&bytes).map_err(io_error)?;
    Ok(checksums::chunk_crcs(&bytes, CHUNK_BYTES))
}

/// `values` one after another as `to_bytes` encodes them.
fn encode_elements<T: Copy, const N: usize>(values: Vec<T>, to_bytes: fn(T) -> [u8; N]) -> Vec<u8> {
    values.into_iter().flat_map(to_bytes).collect()
}
