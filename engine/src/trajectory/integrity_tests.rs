//! Checksums (format version 2): a byte changed in any tensor is named when that tensor is
//! read and by a full check; a changed manifest, missing or malformed checksums refuse to open;
//! a version-1 file (no checksums) opens as unverified.

use std::fs;
use std::path::Path;

use super::tests::{full_writer, small_manifest};
use super::*;

/// Writes the small run to `path` and returns the file's bytes and where its data starts.
fn written(path: &Path) -> (Vec<u8>, usize) {
    full_writer(small_manifest(), StorageDtype::F32).write(path).expect("write");
    let bytes = fs::read(path).expect("read");
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    (bytes, 8 + usize::try_from(header_len).expect("small"))
}

/// One tensor of each kind the small run stores: step tensors, a decoded video, captures of
/// three kinds, final latents.
fn one_of_each_kind() -> Vec<TensorName> {
    vec![
        TensorName::x0(0, 1),
        TensorName::latents(1, 1),
        TensorName::velocity(0, 0),
        TensorName::Video { seed_idx: 1, step_idx: 1 },
        TensorName::Capture { seed_idx: 0, step_idx: 1, layer_idx: 1, kind: CaptureKind::TokenNorm },
        TensorName::Capture { seed_idx: 0, step_idx: 1, layer_idx: 1, kind: CaptureKind::SelfAttn },
        TensorName::Capture { seed_idx: 0, step_idx: 1, layer_idx: 1, kind: CaptureKind::Hidden },
        TensorName::Final { seed_idx: 0 },
    ]
}

#[test]
fn a_written_file_is_checksummed_and_every_tensor_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    written(&path);
    let reader = TrajectoryReader::open(&path).expect("open");
    assert!(reader.is_checksummed());
    assert_eq!(reader.manifest().format_version, 2);
    let checks = reader.verify(|_| {});
    assert_eq!(checks.len(), reader.tensor_names().len());
    assert!(checks.iter().all(|check| check.corrupt.is_none() && !check.non_finite.any()), "{checks:?}");
}

#[test]
fn a_byte_flipped_in_any_tensor_kind_is_named_when_read_and_by_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let (clean, data_start) = written(&path);
    let reader = TrajectoryReader::open(&path).expect("open");
    for name in one_of_each_kind() {
        let range = reader.tensor_info(&name).expect("stored").data_range.clone();
        let mut bytes = clean.clone();
        // A bit low in the mantissa: the value changes by a little and stays finite.
        bytes[data_start + range.start + range.len() / 2] ^= 0x01;
        let corrupt_path = dir.path().join("corrupt.safetensors");
        fs::write(&corrupt_path, &bytes).expect("write");
        let corrupt = TrajectoryReader::open(&corrupt_path).expect("the header is intact, so it opens");
        let err = corrupt.load(&name).expect_err("the flipped tensor is refused").to_string();
        assert!(err.contains(&format!("tensor `{name}` is corrupt")), "{err}");
        assert!(err.contains("chunk 1 of 1"), "{err}");
        let others = corrupt.tensor_names().filter(|other| **other != name).copied().collect::<Vec<_>>();
        for other in others {
            corrupt.load(&other).unwrap_or_else(|err| panic!("{other} is intact: {err}"));
        }
        let named: Vec<TensorName> = corrupt
            .verify(|_| {})
            .into_iter()
            .filter(|check| check.corrupt.is_some())
            .map(|check| check.name)
            .collect();
        assert_eq!(named, [name]);
    }
}

#[test]
fn a_frame_read_checks_the_chunks_its_planes_lie_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let (mut bytes, data_start) = written(&path);
    let video = TensorName::Video { seed_idx: 1, step_idx: 1 };
    let reader = TrajectoryReader::open(&path).expect("open");
    let range = reader.tensor_info(&video).expect("stored").data_range.clone();
    bytes[data_start + range.start] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    let corrupt = TrajectoryReader::open(&path).expect("open");
    // The whole video is one chunk here, so every frame's read checks it.
    for frame_idx in 0..5 {
        let err = corrupt.load_frame(&video, frame_idx).expect_err("the chunk is corrupt").to_string();
        assert!(err.contains(&format!("tensor `{video}` is corrupt")), "{err}");
    }
}

/// `bytes` with the first occurrence of `from` replaced by `to` (the same length).
fn replaced(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes.windows(from.len()).position(|window| window == from.as_bytes()).expect("present");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

#[test]
fn a_manifest_changed_after_writing_does_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let (bytes, _) = written(&path);
    fs::write(&path, replaced(&bytes, "solve the maze", "solve the mazE")).expect("write");
    let err = TrajectoryReader::open(&path).expect_err("refused").to_string();
    assert!(err.contains("the manifest was changed after the file was written"), "{err}");
}

#[test]
fn malformed_or_missing_checksums_do_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let (bytes, _) = written(&path);
    for (from, to, expected) in [
        // The checksums and the manifest are JSON texts inside the header's JSON: quotes escaped.
        ("crc32\\\"", "crc64\\\"", "the checksum algorithm is \"crc64\""),
        ("4194304", "4194305", "`chunk_bytes` is 4194305"),
        ("stepscope.checksums", "stepscope.checksumz", "has no `stepscope.checksums`"),
    ] {
        fs::write(&path, replaced(&bytes, from, to)).expect("write");
        let err = TrajectoryReader::open(&path).expect_err("refused").to_string();
        assert!(err.contains(expected), "{from} -> {to}: {err}");
    }
}

#[test]
fn a_version_1_file_without_checksums_opens_as_unverified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let (bytes, _) = written(&path);
    // As a version-1 writer wrote it: version 1, and no checksums key (renamed to an unknown
    // key of the same length, which readers ignore; the manifest's checksum goes with it).
    let v1 = replaced(
        &replaced(&bytes, "format_version\\\":2", "format_version\\\":1"),
        "stepscope.checksums",
        "stepscope.unknown__",
    );
    fs::write(&path, v1).expect("write");
    let reader = TrajectoryReader::open(&path).expect("a version-1 file opens");
    assert!(!reader.is_checksummed());
    assert!(reader.describe().contains("Integrity: unverified: format version 1 files carry no checksums"));
    reader.load(&TensorName::x0(0, 1)).expect("read unchecked");
    assert!(reader.verify(|_| {}).iter().all(|check| check.corrupt.is_none()));
}
