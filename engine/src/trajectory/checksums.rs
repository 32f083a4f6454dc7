//! Integrity of a trajectory file (format version 2): the CRC-32 of the manifest's text and of
//! every tensor's bytes in chunks of [`CHUNK_BYTES`], kept as JSON under [`CHECKSUMS_KEY`] in
//! the header's `__metadata__`. CRC-32 is the IEEE polynomial that Python's `zlib.crc32`
//! computes, so any program can check a file. Chunks let a reader check only what it reads:
//! one frame of a 194 MB decoded video checks the chunks its planes lie in, not the video.
//!
//! ```json
//! {"algorithm": "crc32", "chunk_bytes": 4194304, "manifest": "89abcdef",
//!  "tensors": {"s0/k0/x0": ["0123abcd", "..."], "...": []}}
//! ```
//!
//! Each checksum is eight lowercase hexadecimal digits, so the header has the same length
//! before and after the checksums are known: writers write placeholders, stream the data, and
//! write the header again over the first one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::header::TensorInfo;
use super::names::TensorName;

/// The `__metadata__` key whose value is the checksums' JSON text.
pub const CHECKSUMS_KEY: &str = "stepscope.checksums";

/// Bytes per checksummed chunk of a tensor (the last chunk of a tensor may be shorter).
pub const CHUNK_BYTES: usize = 4 << 20;

/// The one algorithm the format names.
const ALGORITHM: &str = "crc32";

/// The chunk sizes a reader accepts: powers of two from 4 KiB to 1 GiB.
const CHUNK_BYTES_ACCEPTED: Range<u32> = 12..31;

/// The checksums as the header spells them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumsJson {
    algorithm: String,
    chunk_bytes: u64,
    manifest: String,
    tensors: BTreeMap<String, Vec<String>>,
}

/// The CRC-32 of `bytes` (IEEE, as `zlib.crc32`).
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// The CRC-32 of each `chunk_bytes`-byte chunk of `bytes`, in order.
#[must_use]
pub fn chunk_crcs(bytes: &[u8], chunk_bytes: usize) -> Vec<u32> {
    bytes.chunks(chunk_bytes).map(crc32).collect()
}

/// How many chunks of `chunk_bytes` a tensor of `len` bytes has.
#[must_use]
pub fn chunk_count(len: usize, chunk_bytes: usize) -> usize {
    len.div_ceil(chunk_bytes)
}

/// The checksums JSON for a file whose manifest text has CRC `manifest` and whose tensors have
/// the chunk CRCs `tensors` (in name order); `None` for a tensor writes placeholders of the
/// right count (`count` chunks), for the header written before the data.
#[must_use]
pub fn encode(manifest: u32, tensors: &[(String, Result<Vec<u32>, usize>)]) -> String {
    let hex = |crc: &u32| format!("{crc:08x}");
    let json = ChecksumsJson {
        algorithm: ALGORITHM.to_owned(),
        chunk_bytes: CHUNK_BYTES as u64,
        manifest: hex(&manifest),
        tensors: tensors
            .iter()
            .map(|(name, crcs)| {
                let digits = match crcs {
                    Ok(crcs) => crcs.iter().map(hex).collect(),
                    Err(count) => vec!["00000000".to_owned(); *count],
                };
                (name.clone(), digits)
            })
            .collect(),
    };
    serde_json::to_string(&json).unwrap_or_default()
}

/// What is wrong with a file's checksums, in a phrase naming the field.
pub type ChecksumsProblem = String;

/// A file's checksums, parsed and matched to its tensors, with which chunks have been checked
/// (each chunk is checked once per open file, by whichever read touches it first).
#[derive(Debug)]
pub struct Checksums {
    chunk_bytes: usize,
    tensors: BTreeMap<TensorName, TensorChunks>,
}

#[derive(Debug)]
struct TensorChunks {
    crcs: Box<[u32]>,
    checked: Box<[AtomicBool]>,
}

/// A chunk whose bytes do not match its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMismatch {
    /// The chunk's index within the tensor.
    pub chunk_idx: usize,
    /// How many chunks the tensor has.
    pub chunks: usize,
    /// The chunk's bytes, within the tensor's data.
    pub bytes: Range<usize>,
}

impl Checksums {
    /// Parses `json` (the value under [`CHECKSUMS_KEY`]) and checks it against the manifest's
    /// text and the file's tensors: the algorithm, the chunk size, the manifest's CRC, one list
    /// per tensor and no other, with one checksum per chunk.
    pub fn parse(
        json: &str,
        manifest_text: &str,
        tensors: &BTreeMap<TensorName, TensorInfo>,
    ) -> Result<Self, ChecksumsProblem> {
        let raw: ChecksumsJson =
            serde_json::from_str(json).map_err(|err| format!("`{CHECKSUMS_KEY}` is not valid: {err}"))?;
        if raw.algorithm != ALGORITHM {
            return Err(format!(
                "the checksum algorithm is {:?}; the format names {ALGORITHM:?}",
                raw.algorithm
            ));
        }
        let chunk_bytes = usize::try_from(raw.chunk_bytes)
            .ok()
            .filter(|bytes| bytes.is_power_of_two() && CHUNK_BYTES_ACCEPTED.contains(&bytes.trailing_zeros()))
            .ok_or_else(|| {
                format!("`chunk_bytes` is {}; it must be a power of two from 4 KiB to 1 GiB", raw.chunk_bytes)
            })?;
        let manifest = parse_hex(&raw.manifest).ok_or_else(|| bad_digits("manifest", &raw.manifest))?;
        let found = crc32(manifest_text.as_bytes());
        if manifest != found {
            return Err(format!(
                "the manifest's CRC-32 is {found:08x} but {manifest:08x} was written with it: the manifest \
                 was changed after the file was written"
            ));
        }
        if let Some(name) = raw
            .tensors
            .keys()
            .find(|name| name.parse::<TensorName>().map_or(true, |name| !tensors.contains_key(&name)))
        {
            return Err(format!("there are checksums for `{name}`, which the file does not hold"));
        }
        let mut parsed = BTreeMap::new();
        for (name, info) in tensors {
            let text = name.to_string();
            let digits = raw.tensors.get(&text).ok_or_else(|| format!("tensor `{text}` has no checksums"))?;
            let expected = chunk_count(info.data_range.len(), chunk_bytes);
            if digits.len() != expected {
                return Err(format!(
                    "tensor `{text}` has {} checksums; its {} bytes are {expected} chunks of {chunk_bytes}",
                    digits.len(),
                    info.data_range.len()
                ));
            }
            let crcs = digits
                .iter()
                .map(|digits| parse_hex(digits).ok_or_else(|| bad_digits(&text, digits)))
                .collect::<Result<Box<[u32]>, _>>()?;
            let checked = (0..crcs.len()).map(|_| AtomicBool::new(false)).collect();
            parsed.insert(*name, TensorChunks { crcs, checked });
        }
        Ok(Self { chunk_bytes, tensors: parsed })
    }

    /// The chunk size the file was written with.
    #[must_use]
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// Checks the chunks of tensor `name` that `range` (bytes within the tensor's `data`, the
    /// whole of which is given) overlaps, except those already checked; `Ok` for a tensor without
    /// checksums (there is none in a checked file).
    pub fn check(&self, name: &TensorName, data: &[u8], range: Range<usize>) -> Result<(), ChunkMismatch> {
        let Some(chunks) = self.tensors.get(name) else { return Ok(()) };
        if range.is_empty() {
            return Ok(());
        }
        let first = range.start / self.chunk_bytes;
        let last = (range.end - 1) / self.chunk_bytes;
        for chunk_idx in first..=last.min(chunks.crcs.len().saturating_sub(1)) {
            if chunks.checked[chunk_idx].load(Ordering::Acquire) {
                continue;
            }
            let start = chunk_idx * self.chunk_bytes;
            let bytes = start..(start + self.chunk_bytes).min(data.len());
            let matches = data.get(bytes.clone()).is_some_and(|chunk| crc32(chunk) == chunks.crcs[chunk_idx]);
            if !matches {
                return Err(ChunkMismatch { chunk_idx, chunks: chunks.crcs.len(), bytes });
            }
            chunks.checked[chunk_idx].store(true, Ordering::Release);
        }
        Ok(())
    }
}

fn parse_hex(digits: &str) -> Option<u32> {
    let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (digits.len() == 8 && digits.bytes().all(lowercase_hex)).then(|| u32::from_str_radix(digits, 16).ok())?
}

fn bad_digits(what: &str, digits: &str) -> String {
    format!("the checksum of `{what}` is {digits:?}, not eight lowercase hexadecimal digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_zlibs() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the CRC-32/IEEE check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(chunk_crcs(b"123456789", 4), vec![crc32(b"1234"), crc32(b"5678"), crc32(b"9")]);
        assert!(chunk_crcs(b"", 4).is_empty());
    }

    #[test]
    fn checksums_are_eight_lowercase_hexadecimal_digits() {
        assert_eq!(parse_hex("deadbeef"), Some(0xdead_beef));
        assert_eq!(parse_hex("0000000a"), Some(10));
        for bad in ["DEADBEEF", "deadbee", "deadbeef0", "+eadbeef", "deadbeeg", ""] {
            assert_eq!(parse_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn placeholders_and_checksums_encode_to_the_same_length() {
        let names = |crcs| vec![("s0/k0/x0".to_owned(), crcs)];
        let before = encode(0, &names(Err(3)));
        let after = encode(0xdead_beef, &names(Ok(vec![1, u32::MAX, 0x00ab_cdef])));
        assert_eq!(before.len(), after.len());
        assert!(after.contains("\"deadbeef\"") && after.contains("\"00abcdef\""), "{after}");
    }
}
