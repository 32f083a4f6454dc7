#!/usr/bin/env python3
"""Writes what diffusers' `AutoencoderKLWan` decodes from the tiny pipeline folder's VAE, for
`tests/vae_parity.rs`: tests/fixtures/wan_pipeline_tiny/vae_expected.safetensors holds, for the
pipeline run's last step's `x0_3` (expected.safetensors; [16, 3, 4, 6]: three latent frames, so
the causal cache carries over two chunks), `video_3` = `vae.decode(x0_3 * latents_std +
latents_mean)` as `WanPipeline` decodes its output: [3, 9, 32, 48] in [-1, 1], f32; and
`encode_video` [3, 9, 32, 48], `encode_image` [3, 1, 32, 48] with their normalised latents
`encoded_video` [16, 3, 4, 6] and `encoded_image` [16, 1, 4, 6] (as in wan22_vae_fixture.py).

Run from the repository root after tests/reference/wan_pipeline_fixture.py:
    python tests/reference/wan_vae_fixture.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wan22_vae_fixture import encodings  # noqa: E402

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "wan_pipeline_tiny"


def main() -> None:
    vae = AutoencoderKLWan.from_pretrained(FOLDER / "vae").eval()
    expected = load_file(FOLDER / "expected.safetensors")
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    out = {}
    with torch.no_grad():
        for k in (3,):
            latents = expected[f"x0_{k}"] * std + mean
            out[f"video_{k}"] = vae.decode(latents.unsqueeze(0), return_dict=False)[0][0].float().contiguous()
    out.update(encodings(vae, (32, 48), seed=6))
    save_file(out, FOLDER / "vae_expected.safetensors", metadata={"versions": json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__})})
    print({name: list(tensor.shape) for name, tensor in out.items()})


if __name__ == "__main__":
    main()
