"""Checksums of a trajectory file (format version 2): `engine/TRAJECTORY_FORMAT.md`, "Checksums".

The CRC-32 (`zlib.crc32`) of the manifest's JSON text and of every tensor's bytes in chunks of
`CHUNK_BYTES`, kept as JSON under `CHECKSUMS_KEY` in the header's `__metadata__`. Each checksum is
eight lowercase hexadecimal digits, so the header is as long with placeholders as with the real
values: the writer writes placeholders, streams the data, then writes the header again.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping

CHECKSUMS_KEY = "stepscope.checksums"
"""The `__metadata__` key whose value is the checksums' JSON text."""

CHUNK_BYTES = 4 << 20
"""Bytes per checksummed chunk of a tensor (a tensor's last chunk may be shorter)."""

ALGORITHM = "crc32"

_PLACEHOLDER = "00000000"


def crc32_hex(data: bytes | memoryview) -> str:
    """The CRC-32 of `data` as eight lowercase hexadecimal digits."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def chunk_crcs(data: bytes | memoryview, chunk_bytes: int = CHUNK_BYTES) -> list[str]:
    """The CRC-32 of each `chunk_bytes` chunk of `data`, in order."""
    view = memoryview(data)
    return [crc32_hex(view[start : start + chunk_bytes]) for start in range(0, len(view), chunk_bytes)]


def chunk_count(num_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many chunks a tensor of `num_bytes` bytes has."""
    return -(-num_bytes // chunk_bytes)


def encode(manifest_text: str, tensors: Mapping[str, list[str] | int]) -> str:
    """The checksums' JSON text: `tensors` maps each name to its chunk checksums, or to a chunk
    count for placeholders of the same length."""
    return json.dumps(
        {
            "algorithm": ALGORITHM,
            "chunk_bytes": CHUNK_BYTES,
            "manifest": crc32_hex(manifest_text.encode("utf-8")),
            "tensors": {
                name: [_PLACEHOLDER] * crcs if isinstance(crcs, int) else list(crcs)
                for name, crcs in tensors.items()
            },
        },
        separators=(",", ":"),
    )
