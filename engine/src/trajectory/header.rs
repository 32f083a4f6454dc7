//! The safetensors container: the 8-byte header length, the JSON header, the data section.
//!
//! Reading does not go through the `safetensors` crate, for two reasons found in its 0.8.0
//! source. Its errors do not say which tensor or which numbers are wrong
//! (`TensorInvalidInfo`, `MetadataIncompleteBuffer`). And its final size check
//! (`buffer_end + N_LEN + n` in `read_metadata`) adds the declared data length to the header
//! length unchecked: tensors whose declared sizes sum to near `usize::MAX` make it panic with
//! "attempt to add with overflow" wherever overflow checks are on, as in this workspace's debug
//! builds (tried: eight `U8` tensors of `usize::MAX / 8` bytes each).
//!
//! What the crate does check well, this module checks too: the header size limit, UTF-8, JSON,
//! shape products without overflow, each span matching its shape, and the spans tiling the data
//! section (which rules out overlaps and gaps). Every quantity here is computed with checked
//! arithmetic before it is trusted. Writing emits the layout the crate writes (header padded
//! with spaces to a multiple of 8, tensors tiling the data section, widest dtype first), so the
//! crate and Python's `safetensors` read our files.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::TrajectoryError;

/// Bytes of the little-endian `u64` that opens the file and gives the header length.
pub(crate) const LENGTH_PREFIX_BYTES: usize = size_of::<u64>();

/// The largest header safetensors readers accept (the `safetensors` crate's own limit).
pub(crate) const MAX_HEADER_BYTES: u64 = 100_000_000;

/// How a tensor's elements are stored in the file. Readers always return `f32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum StorageDtype {
    /// IEEE single precision, 4 bytes.
    #[default]
    F32,
    /// IEEE half precision, 2 bytes.
    F16,
    /// bfloat16, 2 bytes.
    Bf16,
}

impl StorageDtype {
    /// Bytes per element.
    #[must_use]
    pub const fn size_in_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
        }
    }

    /// The dtype's spelling in a safetensors header (`F32`, `F16`, `BF16`).
    #[must_use]
    pub const fn safetensors_name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
        }
    }

    fn from_safetensors_name(name: &str) -> Option<Self> {
        [Self::F32, Self::F16, Self::Bf16].into_iter().find(|dtype| dtype.safetensors_name() == name)
    }

    /// The matching candle dtype.
    pub(crate) const fn candle_dtype(self) -> candle_core::DType {
        match self {
            Self::F32 => candle_core::DType::F32,
            Self::F16 => candle_core::DType::F16,
            Self::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl fmt::Display for StorageDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.safetensors_name())
    }
}

/// Where and how one tensor is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The stored element type.
    pub dtype: StorageDtype,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The tensor's bytes, as a range within the data section.
    pub data_range: Range<usize>,
}

/// A validated header: tensors whose ranges tile the data section exactly.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Offset of the data section from the start of the file.
    pub(crate) data_start: usize,
    /// The `__metadata__` string map (empty when absent).
    pub(crate) metadata: BTreeMap<String, String>,
    /// Every tensor, in header order.
    pub(crate) tensors: Vec<(String, TensorInfo)>,
}

/// The header as JSON gives it, before any check. Tensor entries keep their order and their
/// repeats, so that a name listed twice is reported rather than silently dropped.
struct RawHeader {
    metadata: Option<UniqueStrings>,
    tensors: Vec<(String, RawEntry)>,
}

/// The `__metadata__` map, refused when a key repeats: JSON parsers keep one of two equal keys
/// (serde the last, others the first), so a file holding the manifest twice would read
/// differently in different programs.
struct UniqueStrings(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueStrings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringsVisitor;

        impl<'de> Visitor<'de> for StringsVisitor {
            type Value = UniqueStrings;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueStrings, A::Error> {
                let mut strings = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if strings.contains_key(&key) {
                        return Err(de::Error::custom(format_args!(
                            "`__metadata__` holds the key `{key}` twice"
                        )));
                    }
                    strings.insert(key, value);
                }
                Ok(UniqueStrings(strings))
            }
        }

        deserializer.deserialize_map(StringsVisitor)
    }
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;

        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = RawHeader;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter
                    .write_str("a JSON object mapping tensor names to their dtype, shape and data_offsets")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
                let mut metadata = None;
                // Grows with the entries actually present, never from a declared size.
                let mut tensors = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__metadata__" {
                        if metadata.is_some() {
                            return Err(de::Error::duplicate_field("__metadata__"));
                        }
                        metadata = Some(map.next_value()?);
                    } else {
                        let entry = map.next_value()?;
                        tensors.push((key, entry));
                    }
                }
                Ok(RawHeader { metadata, tensors })
            }
        }

        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// Parses and checks the container layout of `file` (the whole file's bytes).
///
/// Checks, in order: the length prefix fits the file and the size limit; the header is UTF-8
/// JSON of the safetensors shape; no tensor name repeats; every dtype is F32, F16 or BF16; every
/// shape's byte size is computable without overflow and equals its offsets' span; every range
/// lies inside the data section; the ranges neither overlap nor leave gaps.
pub(crate) fn parse_layout(path: &Path, file: &[u8]) -> Result<Layout, TrajectoryError> {
    let (prefix, after_prefix) = file
        .split_first_chunk::<LENGTH_PREFIX_BYTES>()
        .ok_or_else(|| TrajectoryError::FileTooShort { path: path.to_owned(), file_len: file.len() })?;
    let header_len = u64::from_le_bytes(*prefix);
    if header_len > MAX_HEADER_BYTES {
        return Err(TrajectoryError::HeaderTooLarge {
            path: path.to_owned(),
            header_len,
            limit: MAX_HEADER_BYTES,
        });
    }
    let header_bytes =
        usize::try_from(header_len).ok().and_then(|len| after_prefix.get(..len)).ok_or_else(|| {
            TrajectoryError::HeaderPastEnd {
                path: path.to_owned(),
                header_len,
                available: after_prefix.len(),
            }
        })?;
    let data_start = LENGTH_PREFIX_BYTES + header_bytes.len();
    let data_len = after_prefix.len() - header_bytes.len();

    let header_text = std::str::from_utf8(header_bytes)
        .map_err(|source| TrajectoryError::HeaderNotUtf8 { path: path.to_owned(), cause: source })?;
    let raw: RawHeader = serde_json::from_str(header_text)
        .map_err(|source| TrajectoryError::HeaderJson { path: path.to_owned(), cause: source })?;

    let mut seen = HashSet::with_capacity(raw.tensors.len());
    if let Some((name, _)) = raw.tensors.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return Err(TrajectoryError::DuplicateTensor { path: path.to_owned(), tensor: name.clone() });
    }

    let tensors = raw
        .tensors
        .into_iter()
        .map(|(name, entry)| {
            let info = check_entry(path, &name, entry, data_len)?;
            Ok((name, info))
        })
        .collect::<Result<Vec<_>, TrajectoryError>>()?;
    check_tiling(path, &tensors, data_len)?;

    Ok(Layout { data_start, metadata: raw.metadata.map(|strings| strings.0).unwrap_or_default(), tensors })
}

/// Checks one entry on its own: dtype, shape size, range inside the data section.
fn check_entry(
    path: &Path,
    name: &str,
    entry: RawEntry,
    data_len: usize,
) -> Result<TensorInfo, TrajectoryError> {
    let dtype = StorageDtype::from_safetensors_name(&entry.dtype).ok_or_else(|| {
        TrajectoryError::UnsupportedDtype {
            path: path.to_owned(),
            tensor: name.to_owned(),
            dtype: entry.dtype.clone(),
        }
    })?;
    let expected_bytes = byte_size(&entry.shape, dtype).ok_or_else(|| TrajectoryError::ShapeOverflow {
        path: path.to_owned(),
        tensor: name.to_owned(),
        shape: entry.shape.clone(),
    })?;
    let (start, end) = entry.data_offsets;
    let range = start..end;
    if end < start {
        return Err(TrajectoryError::OffsetsReversed {
            path: path.to_owned(),
            tensor: name.to_owned(),
            range,
        });
    }
    if end > data_len {
        return Err(TrajectoryError::OffsetsPastEnd {
            path: path.to_owned(),
            tensor: name.to_owned(),
            range,
            data_len,
        });
    }
    if range.len() != expected_bytes {
        return Err(TrajectoryError::SizeMismatch {
            path: path.to_owned(),
            tensor: name.to_owned(),
            dtype,
            shape: entry.shape,
            expected_bytes,
            range,
        });
    }
    Ok(TensorInfo { dtype, shape: entry.shape, data_range: range })
}

/// Checks that the (individually valid) ranges tile `0..data_len` without overlap or gap.
fn check_tiling(
    path: &Path,
    tensors: &[(String, TensorInfo)],
    data_len: usize,
) -> Result<(), TrajectoryError> {
    let mut by_start: Vec<&(String, TensorInfo)> = tensors.iter().collect();
    by_start.sort_by_key(|(_, info)| (info.data_range.start, info.data_range.end));
    let mut covered_to = 0;
    let mut previous: Option<&(String, TensorInfo)> = None;
    for entry @ (name, info) in by_start {
        let range = &info.data_range;
        if range.start < covered_to {
            // `covered_to > 0`, so a non-empty tensor came before and set it.
            let (first, first_info) = previous.unwrap_or(entry);
            return Err(TrajectoryError::OverlappingTensors {
                path: path.to_owned(),
                first: first.clone(),
                first_range: first_info.data_range.clone(),
                second: name.clone(),
                second_range: range.clone(),
            });
        }
        if range.start > covered_to {
            return Err(TrajectoryError::UncoveredBytes {
                path: path.to_owned(),
                gap: covered_to..range.start,
                data_len,
            });
        }
        if !range.is_empty() {
            covered_to = range.end;
            previous = Some(entry);
        }
    }
    if covered_to < data_len {
        return Err(TrajectoryError::UncoveredBytes {
            path: path.to_owned(),
            gap: covered_to..data_len,
            data_len,
        });
    }
    Ok(())
}

/// Bytes a tensor of `shape` and `dtype` takes, or `None` on overflow.
pub(crate) fn byte_size(shape: &[usize], dtype: StorageDtype) -> Option<usize> {
    shape.iter().try_fold(dtype.size_in_bytes(), |bytes, &dim| bytes.checked_mul(dim))
}

/// One tensor's header entry, for writing.
#[derive(Debug)]
pub(crate) struct EntryOut<'a> {
    pub(crate) name: String,
    pub(crate) dtype: StorageDtype,
    pub(crate) shape: &'a [usize],
    pub(crate) data_range: Range<usize>,
}

/// Encodes the header for `entries` (already in data order, tiling the data section) with
/// `metadata` as `__metadata__`. Returns the 8-byte length prefix and the header, padded with
/// spaces so that the data section starts at a multiple of 8 bytes.
pub(crate) fn encode_header(
    metadata: &BTreeMap<&str, &str>,
    entries: &[EntryOut<'_>],
) -> serde_json::Result<Vec<u8>> {
    let mut header = serde_json::to_vec(&HeaderOut { metadata, entries })?;
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(LENGTH_PREFIX_BYTES + header.len());
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    Ok(bytes)
}

/// Serialises as the safetensors header object, `__metadata__` first, then the entries in order.
struct HeaderOut<'a> {
    metadata: &'a BTreeMap<&'a str, &'a str>,
    entries: &'a [EntryOut<'a>],
}

impl Serialize for HeaderOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct EntryJson<'a> {
            dtype: &'static str,
            shape: &'a [usize],
            data_offsets: [usize; 2],
        }

        let mut map = serializer.serialize_map(Some(self.entries.len() + 1))?;
        map.serialize_entry("__metadata__", self.metadata)?;
        for entry in self.entries {
            let json = EntryJson {
                dtype: entry.dtype.safetensors_name(),
                shape: entry.shape,
                data_offsets: [entry.data_range.start, entry.data_range.end],
            };
            map.serialize_entry(&entry.name, &json)?;
        }
        map.end()
    }
}
