"""Writes a SYNTHETIC trajectory file at the size of a real Wan2.1 480p run, for looking at the
window and for benchmarks: no model ran, the values are made up.

Shapes are those of a Wan2.1 T2V run at 480 x 832 x 81 frames: latents [16, 21, 60, 104] per step,
and the decoded video [3, 81, 480, 832] (f16) at the steps given by --video-steps. The picture is a
bright disc that moves across the frames over a gradient, and sharpens over the steps (the noise
part shrinks with sigma), so down-sampling and the frame order are easy to check by eye.

    pip install numpy safetensors
    python tests/reference/synthetic_real_size_trajectory.py /tmp/real_size.safetensors \
        --steps 4 --seeds 2 --video-steps 3

The manifest follows engine/TRAJECTORY_FORMAT.md (format 1); `stepscope info FILE` checks it.
"""

import argparse
import json

import numpy as np
from safetensors.numpy import save_file

LATENT = (16, 21, 60, 104)
VIDEO = (3, 81, 480, 832)


def sigmas(steps: int, shift: float = 3.0) -> list[float]:
    raw = np.linspace(1.0, 0.0, steps + 1)[:-1]
    shifted = shift * raw / (1 + (shift - 1) * raw)
    return [float(s) for s in shifted] + [0.0]


def clean_video(frames: int, height: int, width: int) -> np.ndarray:
    """[3, F, H, W] in [-1, 1]: a disc moving left to right over a diagonal gradient."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((3, frames, height, width), np.float32)
    for f in range(frames):
        cx = width * (0.1 + 0.8 * f / max(frames - 1, 1))
        cy = height * 0.5
        disc = ((x - cx) ** 2 + (y - cy) ** 2 < (0.2 * height) ** 2).astype(np.float32)
        gradient = (x / width + y / height) - 1.0
        out[0, f] = np.clip(gradient * 0.6 + disc, -1, 1)
        out[1, f] = np.clip(-gradient * 0.6 + 0.8 * disc, -1, 1)
        out[2, f] = np.clip(0.3 * np.sin(x / 20.0) + 0.2 * disc, -1, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--video-steps", type=int, nargs="*", default=[])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    schedule = sigmas(args.steps)
    clean_latent = rng.standard_normal(LATENT, dtype=np.float32) * 0.5
    # Smooth the latent so that it previews as blobs, not static.
    clean_latent = (clean_latent + np.roll(clean_latent, 1, 2) + np.roll(clean_latent, 1, 3)) / 3
    video = clean_video(*VIDEO[1:]) if args.video_steps else None

    tensors = {}
    seeds = []
    for seed_idx in range(args.seeds):
        noise = np.random.default_rng(seed_idx + 1).standard_normal(LATENT, dtype=np.float32)
        for step_idx in range(args.steps):
            sigma = schedule[step_idx]
            latents = (1 - sigma) * clean_latent + sigma * noise
            velocity = noise - clean_latent
            x0 = latents - sigma * velocity
            tensors[f"s{seed_idx}/k{step_idx}/latents"] = latents
            tensors[f"s{seed_idx}/k{step_idx}/velocity"] = velocity
            tensors[f"s{seed_idx}/k{step_idx}/x0"] = x0
            if step_idx in args.video_steps:
                blur = sigma * 0.5
                noisy = video + blur * np.random.default_rng(step_idx).standard_normal(VIDEO, dtype=np.float32)
                tensors[f"s{seed_idx}/k{step_idx}/video"] = np.clip(noisy, -1, 1).astype(np.float16)
        tensors[f"s{seed_idx}/final/latents"] = clean_latent.copy()
        seed = {
            "noise": {"rng_seed": seed_idx + 1},
            "forked_from": None,
            "steps": list(range(args.steps)),
            "capture_steps": [],
            "final_latents": True,
        }
        if args.video_steps:
            seed["video_steps"] = sorted(args.video_steps)
        seeds.append(seed)

    manifest = {
        "format_version": 1,
        "created_by": "tests/reference/synthetic_real_size_trajectory.py (SYNTHETIC values)",
        "model": {"source": "none: synthetic values at Wan2.1 480p size", "config": {}, "dtype": "f32"},
        "conditioning": {
            "prompt": "synthetic: a disc moving left to right",
            "prompt_embeddings": "none",
            "guidance_scale": 1.0,
            "negative_prompt": False,
            "condition_frame": False,
            "task": None,
        },
        "schedule": {
            "scheduler": "euler",
            "steps": args.steps,
            "shift": 3.0,
            "sigmas": schedule,
            "timesteps": [s * 1000.0 for s in schedule[:-1]],
        },
        "latent_shape": list(LATENT),
        "patch_size": [1, 2, 2],
        "step_tensors": ["latents", "velocity", "x0"],
        "seeds": seeds,
        "captures": {"layers": [], "kinds": [], "query_tokens": []},
    }
    if args.video_steps:
        manifest["video"] = {"shape": list(VIDEO), "decoder": "none (synthetic)"}
    save_file(tensors, args.output, metadata={"stepscope.manifest": json.dumps(manifest)})


if __name__ == "__main__":
    main()
