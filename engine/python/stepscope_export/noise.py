"""Stepscope's seeded noise, so that an exported run's noise is the engine's `{"rng_seed": n}`.

`engine/TRAJECTORY_FORMAT.md`, "Seeded noise": a splitmix64 stream with state `n`; uniforms
`u = ((z >> 11) + 1) / 2^53` in `(0, 1]`; Box-Muller on consecutive pairs `(u1, u2)` giving
`sqrt(-2 ln u1) cos(2 pi u2)` then `sqrt(-2 ln u1) sin(2 pi u2)` in f64, rounded to f32. The
stream is computed here with numpy's wrapping `uint64` arithmetic, all draws at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, count: int) -> np.ndarray:
    """The first `count` outputs of splitmix64 with state `seed`, as `uint64` `[count]`."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"the noise seed {seed} is not an unsigned 64-bit integer")
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stepscope_noise(seed: int, shape: Sequence[int]) -> torch.Tensor:
    """The engine's Gaussian noise for `{"rng_seed": seed}`: f32 `shape` (e.g. `[C, F, H, W]`)."""
    count = math.prod(shape)
    pairs = (count + 1) // 2
    draws = splitmix64(seed, 2 * pairs)
    uniforms = ((draws >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0**-53
    radius = np.sqrt(-2.0 * np.log(uniforms[0::2]))
    angle = 2.0 * math.pi * uniforms[1::2]
    values = np.empty(2 * pairs, dtype=np.float64)
    values[0::2] = radius * np.cos(angle)
    values[1::2] = radius * np.sin(angle)
    return torch.from_numpy(values[:count].astype(np.float32).reshape(tuple(shape)))
