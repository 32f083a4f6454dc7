"""Regenerates Stepscope's seeded noise from the written spec alone (engine/TRAJECTORY_FORMAT.md,
"Seeded noise"), independently of the Rust code, and saves it as a fixture that the Rust tests
compare bit for bit.

Run by hand: /path/to/venv/bin/python tests/reference/seeded_noise.py
Writes tests/fixtures/noise/seed7_c2f3h4w5.safetensors (tensor `noise`, f32, [2, 3, 4, 5]).
"""
import math
import struct
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

MASK = (1 << 64) - 1


def splitmix64(state):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def gaussian_noise(seed, shape):
    count = math.prod(shape)
    stream = splitmix64(seed)
    unit = lambda: ((next(stream) >> 11) + 1) * 2.0**-53
    values = []
    while len(values) < count:
        radius = math.sqrt(-2.0 * math.log(unit()))
        angle = 2.0 * math.pi * unit()
        values += [radius * math.cos(angle), radius * math.sin(angle)]
    return np.array(values[:count], dtype=np.float32).reshape(shape)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "fixtures" / "noise" / "seed7_c2f3h4w5.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    noise = gaussian_noise(7, (2, 3, 4, 5))
    save_file({"noise": noise}, str(out), metadata={"seed": "7", "generator": "tests/reference/seeded_noise.py"})
    print(out, noise.shape, noise.reshape(-1)[:4])
