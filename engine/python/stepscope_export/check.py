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

from .manifest import MANIFEST_KEY, ManifestError, check_manifest, check_tensor_set
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
        check_manifest(manifest)
        check_tensor_set(manifest, shapes)
    except (ValueError, ManifestError) as error:
        raise TrajectoryFileError(f"{path}: {error}") from None
    return manifest
