"""Checking a trajectory file on disk against the format, without loading its tensors.

`check_file` applies the container rules of `engine/TRAJECTORY_FORMAT.md` (header size, dtypes,
byte ranges that tile the data section exactly) and the manifest and tensor-set rules, as the
Rust reader does on open: among them the optional `video` / `seeds[i].video_steps` fields and
the `s{s}/k{k}/video` tensors they promise (each of the shape `video.shape`). Tensors themselves
are read with any safetensors reader.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from . import checksums
from .checksums import CHECKSUMS_KEY
from .manifest import MANIFEST_KEY, READABLE_VERSIONS, ManifestError, check_manifest, check_tensor_set
from .writer import MAX_HEADER_BYTES

_ELEMENT_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


class TrajectoryFileError(ValueError):
    """A file that is not a valid trajectory; the message names the file and what is wrong."""


def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int, int]:
    """The parsed safetensors header of `path`, where its data section starts, and the file's length."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise TrajectoryFileError(f"{path}: the file is {size} bytes, too short for a header length")
        length = int.from_bytes(prefix, "little")
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise TrajectoryFileError(f"{path}: the header claims {length} bytes in a {size}-byte file")
        text = file.read(length)
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as error:
        raise TrajectoryFileError(f"{path}: the header is not UTF-8 JSON: {error}") from None
    if not isinstance(header, dict):
        raise TrajectoryFileError(f"{path}: the header is not a JSON object")
    return header, 8 + length, size


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"`{key}` appears twice")
        result[key] = value
    return result


def check_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Checks the trajectory file at `path` completely (except the tensor values); returns its
    manifest. Raises `TrajectoryFileError` naming the file and the problem."""
    path = Path(path)
    header, data_start, size = read_header(path)
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or MANIFEST_KEY not in metadata:
        raise TrajectoryFileError(f"{path}: the header's `__metadata__` has no `{MANIFEST_KEY}`")
    ranges = []
    shapes = {}
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise TrajectoryFileError(f"{path}: tensor `{name}` is not described by dtype, shape and data_offsets")
        if info["dtype"] not in _ELEMENT_SIZES:
            raise TrajectoryFileError(f"{path}: tensor `{name}` is {info['dtype']}; the format allows F32, F16, BF16")
        start, end = info["data_offsets"]
        expected = math.prod(info["shape"]) * _ELEMENT_SIZES[info["dtype"]]
        if end - start != expected:
            raise TrajectoryFileError(f"{path}: tensor `{name}` spans {end - start} bytes, its shape needs {expected}")
        ranges.append((start, end, name))
        shapes[name] = info["shape"]
    position = 0
    for start, end, name in sorted(ranges):
        if start != position:
            raise TrajectoryFileError(f"{path}: tensor `{name}` starts at {start}, the previous one ends at {position}")
        position = end
    if data_start + position != size:
        raise TrajectoryFileError(f"{path}: the tensors end at byte {data_start + position} of {size}")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
        check_manifest(manifest, READABLE_VERSIONS)
        check_tensor_set(manifest, shapes)
        _check_checksums(manifest, metadata, {name: end - start for start, end, name in ranges})
    except (ValueError, ManifestError) as error:
        raise TrajectoryFileError(f"{path}: {error}") from None
    return manifest


def _check_checksums(manifest: dict[str, Any], metadata: dict[str, Any], sizes: dict[str, int]) -> None:
    """The checksums' layout (one per chunk of every tensor) and the manifest's checksum."""
    if CHECKSUMS_KEY not in metadata:
        if manifest["format_version"] >= 2:
            raise ManifestError(f"format version 2 files carry `{CHECKSUMS_KEY}`; this one has none")
        return
    parsed = json.loads(metadata[CHECKSUMS_KEY])
    if not isinstance(parsed, dict) or set(parsed) != {"algorithm", "chunk_bytes", "manifest", "tensors"}:
        raise ManifestError(f"`{CHECKSUMS_KEY}` must hold algorithm, chunk_bytes, manifest and tensors")
    if parsed["algorithm"] != checksums.ALGORITHM:
        raise ManifestError(f"the checksum algorithm is {parsed['algorithm']!r}; the format names 'crc32'")
    chunk_bytes = parsed["chunk_bytes"]
    if not isinstance(chunk_bytes, int) or chunk_bytes < 4096 or chunk_bytes > 1 << 30 or chunk_bytes & (chunk_bytes - 1):
        raise ManifestError(f"`chunk_bytes` is {chunk_bytes!r}; it must be a power of two from 4 KiB to 1 GiB")
    if parsed["manifest"] != checksums.crc32_hex(metadata[MANIFEST_KEY].encode("utf-8")):
        raise ManifestError("the manifest's CRC-32 does not match: the manifest was changed after the file was written")
    tensors = parsed["tensors"]
    if not isinstance(tensors, dict) or set(tensors) != set(sizes):
        raise ManifestError("the checksums do not list exactly the file's tensors")
    for name, size in sizes.items():
        if len(tensors[name]) != checksums.chunk_count(size, chunk_bytes):
            raise ManifestError(f"tensor `{name}` has {len(tensors[name])} checksums for {size} bytes")


def corrupt_tensors(path: str | os.PathLike[str]) -> list[str]:
    """The tensors of the trajectory file at `path` whose bytes do not match their checksums,
    in file order (reads the whole file once; `check_file` first). A version-1 file has no
    checksums: none is found corrupt."""
    path = Path(path)
    check_file(path)
    header, data_start, _ = read_header(path)
    metadata = header.pop("__metadata__")
    if CHECKSUMS_KEY not in metadata:
        return []
    parsed = json.loads(metadata[CHECKSUMS_KEY])
    corrupt = []
    with path.open("rb") as file:
        for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            start, end = info["data_offsets"]
            file.seek(data_start + start)
            chunk_bytes = parsed["chunk_bytes"]
            found = [
                checksums.crc32_hex(file.read(min(chunk_bytes, end - at))) for at in range(start, end, chunk_bytes)
            ]
            if found != parsed["tensors"][name]:
                corrupt.append(name)
    return corrupt
