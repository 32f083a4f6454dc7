"""Checksums (format version 2): the Python writer writes them as the engine does, the checker
names a changed byte's tensor, and the engine's `info --verify` accepts what Python wrote."""

import json
import os
import subprocess
import zlib

import pytest
from conftest import REPO_ROOT
from test_format import small_manifest, small_tensors

from stepscope_export import TrajectoryFileError, check_file, corrupt_tensors, write_trajectory
from stepscope_export.check import read_header
from stepscope_export.checksums import CHECKSUMS_KEY, CHUNK_BYTES, chunk_crcs


def test_crc32_is_zlibs_in_chunks():
    assert chunk_crcs(b"123456789", 4) == [f"{zlib.crc32(part):08x}" for part in (b"1234", b"5678", b"9")]
    assert chunk_crcs(b"") == []


def test_the_writer_writes_one_checksum_per_chunk_and_the_manifests(tmp_path):
    path = tmp_path / "run.safetensors"
    write_trajectory(path, small_manifest(), small_tensors())
    header, data_start, _ = read_header(path)
    metadata = header.pop("__metadata__")
    parsed = json.loads(metadata[CHECKSUMS_KEY])
    assert parsed["algorithm"] == "crc32" and parsed["chunk_bytes"] == CHUNK_BYTES
    assert parsed["manifest"] == f"{zlib.crc32(metadata['stepscope.manifest'].encode()):08x}"
    data = path.read_bytes()[data_start:]
    for name, info in header.items():
        start, end = info["data_offsets"]
        assert parsed["tensors"][name] == chunk_crcs(data[start:end]), name
    assert corrupt_tensors(path) == []


def test_a_changed_byte_names_its_tensor_and_a_changed_manifest_is_refused(tmp_path):
    path = tmp_path / "run.safetensors"
    write_trajectory(path, small_manifest(), small_tensors())
    header, data_start, _ = read_header(path)
    clean = path.read_bytes()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        changed = bytearray(clean)
        changed[data_start + (start + end) // 2] ^= 1
        path.write_bytes(bytes(changed))
        assert corrupt_tensors(path) == [name]
    path.write_bytes(clean.replace(b"stepscope_export test", b"stepscope_export Test", 1))
    with pytest.raises(TrajectoryFileError, match="the manifest was changed after the file was written"):
        check_file(path)


def test_the_engine_verifies_a_file_python_wrote(tmp_path):
    """`stepscope info --verify` (the binary `cargo build` made, if there is one) accepts the
    Python writer's checksums and names a tensor whose byte changed."""
    binary = REPO_ROOT / "target" / "debug" / ("stepscope.exe" if os.name == "nt" else "stepscope")
    if not binary.exists():
        pytest.skip(f"no engine binary at {binary}: run `cargo build` first")
    path = tmp_path / "run.safetensors"
    write_trajectory(path, small_manifest(), small_tensors())
    verified = subprocess.run([binary, "info", "--verify", path], capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    assert "match their checksums" in verified.stderr
    header, data_start, _ = read_header(path)
    start, _ = header["s0/k1/velocity"]["data_offsets"]
    changed = bytearray(path.read_bytes())
    changed[data_start + start] ^= 1
    path.write_bytes(bytes(changed))
    refused = subprocess.run([binary, "info", "--verify", path], capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "tensor `s0/k1/velocity` is corrupt" in refused.stderr
