"""Writing a trajectory file: the safetensors container, laid out and written as the format says.

`engine/TRAJECTORY_FORMAT.md`, "Container" and "Writing": everything is checked before the disk
is touched; tensors are laid out widest dtype first, then in file order of their names (so every
tensor starts at a multiple of its element size); the header is padded with spaces to a multiple
of 8; the file is written to a temporary file in the target's folder, synced, renamed over the
target, and the folder synced.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from . import checksums
from .checksums import CHECKSUMS_KEY
from .manifest import MANIFEST_KEY, ManifestError, check_manifest, check_tensor_set
from .names import parse_name

STORAGE_DTYPES: dict[str, tuple[str, torch.dtype]] = {
    "f32": ("F32", torch.float32),
    "f16": ("F16", torch.float16),
    "bf16": ("BF16", torch.bfloat16),
}
"""Storage dtype names (as this package spells them) -> (safetensors dtype, torch dtype)."""

MAX_HEADER_BYTES = 100_000_000
"""The largest header the format allows."""


def _storage(name: str, dtype: str) -> tuple[str, torch.dtype]:
    try:
        return STORAGE_DTYPES[dtype]
    except KeyError:
        raise ManifestError(
            f"tensor `{name}`: storage dtype {dtype!r} is not one of {', '.join(STORAGE_DTYPES)}"
        ) from None


def encode_tensor(tensor: torch.Tensor, dtype: torch.dtype) -> bytes:
    """The little-endian bytes of `tensor` converted to `dtype` (rounding to nearest), row-major."""
    if sys.byteorder != "little":
        raise RuntimeError("writing trajectory files needs a little-endian machine")
    converted = tensor.detach().to(device="cpu", dtype=dtype).contiguous().reshape(-1)
    return converted.view(torch.uint8).numpy().tobytes()


def write_trajectory(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    storage: Mapping[str, str] | None = None,
    default_storage: str = "f32",
) -> Path:
    """Checks `manifest` and `tensors` against the format and writes them, atomically, to `path`.

    `tensors` maps every tensor name the manifest promises (step tensors, decoded `video`s,
    captures, final latents) to a tensor of any float dtype on any device; `storage` optionally
    maps names to a storage dtype (`"f32"`, `"f16"`, `"bf16"`), the others are stored as
    `default_storage`. Within a dtype, a step's `video` follows its step tensors and precedes its
    captures. On any error a file already at `path` is untouched. Returns the path written.
    """
    path = Path(path)
    check_manifest(manifest)
    shapes = {name: list(tensor.shape) for name, tensor in tensors.items()}
    check_tensor_set(manifest, shapes)
    storage = storage or {}
    unknown = sorted(set(storage) - set(tensors))
    if unknown:
        raise ManifestError(f"a storage dtype is given for `{unknown[0]}`, which is not among the tensors")
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise ManifestError(f"tensor `{name}` is {tensor.dtype}; trajectories hold floating-point tensors")

    layout = []
    for name in tensors:
        st_dtype, torch_dtype = _storage(name, storage.get(name, default_storage))
        element_size = torch.empty((), dtype=torch_dtype).element_size()
        layout.append((-element_size, parse_name(name).order_key(), name, st_dtype, torch_dtype))
    layout.sort(key=lambda entry: (entry[0], entry[1]))

    manifest_text = json.dumps(manifest, separators=(",", ":"), allow_nan=False)
    entries: dict[str, Any] = {}
    offset = 0
    for neg_size, _, name, st_dtype, _ in layout:
        end = offset + tensors[name].numel() * -neg_size
        entries[name] = {"dtype": st_dtype, "shape": shapes[name], "data_offsets": [offset, end]}
        offset = end

    def header_bytes(crcs: dict[str, list[str] | int]) -> bytes:
        metadata = {MANIFEST_KEY: manifest_text, CHECKSUMS_KEY: checksums.encode(manifest_text, crcs)}
        header = json.dumps({"__metadata__": metadata, **entries}, separators=(",", ":"), allow_nan=False)
        encoded = header.encode("utf-8")
        encoded += b" " * (-(8 + len(encoded)) % 8)
        return len(encoded).to_bytes(8, "little") + encoded

    # Placeholders first (as long as the checksums), the data, then the header with checksums.
    placeholders = header_bytes(
        {name: checksums.chunk_count(end - start) for name, (start, end) in _offsets(entries)}
    )
    if len(placeholders) - 8 > MAX_HEADER_BYTES:
        raise ManifestError(f"the header is {len(placeholders) - 8} bytes; the format allows {MAX_HEADER_BYTES}")
    crcs: dict[str, list[str] | int] = {}

    def chunks() -> Iterable[bytes]:
        yield placeholders
        for _, _, name, _, torch_dtype in layout:
            data = encode_tensor(tensors[name], torch_dtype)
            crcs[name] = checksums.chunk_crcs(data)
            yield data

    def final_header() -> bytes:
        header = header_bytes(crcs)
        if len(header) != len(placeholders):
            raise RuntimeError("the header with checksums is not as long as its placeholder")
        return header

    replace_file(path, chunks, final_header)
    return path


def _offsets(entries: Mapping[str, Any]) -> Iterable[tuple[str, tuple[int, int]]]:
    return ((name, tuple(entry["data_offsets"])) for name, entry in entries.items())


def replace_file(
    path: str | os.PathLike[str],
    chunks: Callable[[], Iterable[bytes]],
    rewrite_start: Callable[[], bytes] | None = None,
) -> None:
    """Writes the bytes `chunks()` yields to `path` atomically; then, if given, the bytes
    `rewrite_start()` returns over the start of the file (a header completed after the data).

    A new hidden file in the target's folder (created with the usual permissions, `0o666` less
    the umask) receives the bytes, is synced to disk and renamed over `path`; then the folder is
    synced (on POSIX systems). If anything fails before the rename, the temporary file is removed
    and a previous file at `path` is left as it was. Temporary files of `path` that killed writers
    left behind (this package's or the engine's: both name them `.NAME.PID-N.tmp`) are removed
    first: those whose process no longer runs (POSIX), or untouched for a day (elsewhere).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist")
    sweep_stale_temp_files(folder, path.name)
    temp_path, fd = _create_temp_file(folder, path.name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks():
                out.write(chunk)
            if rewrite_start is not None:
                out.seek(0)
                out.write(rewrite_start())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    if os.name == "posix":
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


_TEMP_COUNTER = itertools.count()
_STALE_AFTER_S = 24 * 3600


def _temp_file_owner(file_name: str, target_name: str) -> int | None:
    """The process id in `.{target_name}.{pid}-{counter}.tmp`, if `file_name` is such a name."""
    prefix = f".{target_name}."
    if not (file_name.startswith(prefix) and file_name.endswith(".tmp")):
        return None
    pid, dash, counter = file_name[len(prefix) : -len(".tmp")].partition("-")
    if not (dash and pid.isdigit() and counter.isdigit()):
        return None
    return int(pid)


def _writer_is_gone(pid: int, temp_path: Path) -> bool:
    if pid == os.getpid():
        return False
    if os.name == "posix":
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except (ProcessLookupError, OverflowError):  # no such process; larger than any pid
            return True
        except OSError:  # it exists but is not ours (PermissionError), or unknown: keep the file
            return False
        return False
    try:
        return time.time() - temp_path.stat().st_mtime > _STALE_AFTER_S
    except OSError:
        return False


def sweep_stale_temp_files(folder: Path, target_name: str) -> None:
    """Removes the temporary files of `target_name` in `folder` whose writer is gone (best effort)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        pid = _temp_file_owner(entry.name, target_name)
        if pid is not None and _writer_is_gone(pid, entry):
            entry.unlink(missing_ok=True)


def _create_temp_file(folder: Path, target_name: str) -> tuple[Path, int]:
    """Creates a new, empty, hidden file in `folder` named after `target_name`; returns it open."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(16):
        temp_path = folder / f".{target_name}.{os.getpid()}-{next(_TEMP_COUNTER)}.tmp"
        try:
            return temp_path, os.open(temp_path, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: could not create a temporary file for {target_name}: every name was taken")
