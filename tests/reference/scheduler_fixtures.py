"""Writes the scheduler parity fixtures in tests/fixtures/scheduler/ from diffusers.

Run by hand (not in CI) from the repository root, in a virtualenv with torch, diffusers and
safetensors installed:

    python tests/reference/scheduler_fixtures.py

For every configuration below it builds the diffusers scheduler the way Wan's pipelines use it
(`set_timesteps(steps)`, then `set_begin_index(0)`), draws a random initial sample and one random
model output (a flow velocity) per step, runs every `step()` of the schedule and saves one
safetensors file per configuration, named `<kind>_shift<shift>_steps<steps>.safetensors`:

    sigmas        f32 [steps + 1]        scheduler.sigmas (ends in 0)
    timesteps     f32 or i64 [steps]     scheduler.timesteps (UniPC casts them to int64)
    sample        f32 [1, 4, 1, 4, 4]    the sample before step 0
    velocities    f32 [steps, 1, 4, 1, 4, 4]    the model output passed to step k
    prev_samples  f32 [steps, 1, 4, 1, 4, 4]    what step k returned

The header metadata records the scheduler config and the library versions. The sample is small
on purpose: the whole directory stays under 300 KB.
"""

import json
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from safetensors.torch import save_file

OUT_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "scheduler"
SAMPLE_SHAPE = (1, 4, 1, 4, 4)
SHIFTS = (3.0, 5.0)
EULER_STEPS = (5, 20, 50)
UNIPC_STEPS = (6, 20, 50)


def euler_scheduler(shift: float) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def unipc_scheduler(shift: float) -> UniPCMultistepScheduler:
    # The scheduler_config.json shipped with the Wan2.1 / Wan2.2 diffusers checkpoints, with the
    # defaults it relies on spelled out.
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=shift,
        solver_order=2,
        solver_type="bh2",
        predict_x0=True,
        lower_order_final=True,
        disable_corrector=[],
        final_sigmas_type="zero",
        thresholding=False,
        timestep_spacing="linspace",
    )


def run(kind: str, scheduler, shift: float, steps: int, seed: int) -> None:
    scheduler.set_timesteps(steps)
    scheduler.set_begin_index(0)
    timesteps = scheduler.timesteps.clone()
    assert len(timesteps) == steps
    assert len(torch.unique(timesteps)) == steps, "duplicate timesteps"

    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(SAMPLE_SHAPE, generator=generator, dtype=torch.float32)
    velocities = torch.randn((steps, *SAMPLE_SHAPE), generator=generator, dtype=torch.float32)

    prev_samples = []
    x = sample
    for step_idx, t in enumerate(timesteps):
        x = scheduler.step(velocities[step_idx], t, x, return_dict=False)[0]
        assert x.dtype == torch.float32
        prev_samples.append(x)

    tensors = {
        "sigmas": scheduler.sigmas.to(torch.float32).contiguous(),
        "timesteps": timesteps.contiguous(),
        "sample": sample.contiguous(),
        "velocities": velocities.contiguous(),
        "prev_samples": torch.stack(prev_samples).contiguous(),
    }
    metadata = {
        "kind": kind,
        "shift": repr(shift),
        "steps": str(steps),
        "seed": str(seed),
        "scheduler_class": type(scheduler).__name__,
        "scheduler_config": json.dumps(dict(scheduler.config), default=str),
        "diffusers": diffusers.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    path = OUT_DIR / f"{kind}_shift{shift:g}_steps{steps}.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    print(f"wrote {path.relative_to(OUT_DIR.parent.parent.parent)} ({path.stat().st_size} bytes)")


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    seed = 0
    for shift in SHIFTS:
        for steps in EULER_STEPS:
            run("euler", euler_scheduler(shift), shift, steps, seed)
            seed += 1
        for steps in UNIPC_STEPS:
            run("unipc", unipc_scheduler(shift), shift, steps, seed)
            seed += 1


if __name__ == "__main__":
    main()
