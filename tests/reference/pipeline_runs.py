"""What the tiny pipeline fixtures share: saving some of a pipeline's parts into a fixture folder,
and recording every step's `x0` (`latents - sigma * v`, of the latents the scheduler steps) during
a pipeline call."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def save_parts(pipe, out: Path, parts: tuple[str, ...]) -> None:
    """Writes `model_index.json` and the folders `parts` of `pipe.save_pretrained` to `out`
    (emptied first); the other parts are committed elsewhere and copied in by the tests."""
    staging = out.with_name(out.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    pipe.save_pretrained(staging, safe_serialization=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for part in parts:
        shutil.copytree(staging / part, out / part)
    shutil.copy(staging / "model_index.json", out / "model_index.json")
    shutil.rmtree(staging)


def record_x0(pipe) -> list[torch.Tensor]:
    """A list that fills with each step's `x0` `[C, F, H, W]` (batch 0, f32) as `pipe` runs."""
    x0: list[torch.Tensor] = []
    original_step = pipe.scheduler.step

    def recording_step(model_output, timestep, sample, *args, **kwargs):
        sigma = pipe.scheduler.sigmas[len(x0)]
        x0.append((sample[0].float() - sigma * model_output[0].float()).contiguous())
        return original_step(model_output, timestep, sample, *args, **kwargs)

    pipe.scheduler.step = recording_step
    return x0
