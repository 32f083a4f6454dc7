#!/usr/bin/env python3
"""Writes a tiny random Wan2.2-style VAE (residual up blocks, patch size 2, 48 latent channels)
and what diffusers decodes with it, for `tests/vae_parity.rs`.

tests/fixtures/wan22_vae_tiny/ (about 420 KB): `config.json` and
`diffusion_pytorch_model.safetensors` of `AutoencoderKLWan(base_dim=2, decoder_base_dim=4,
z_dim=48, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
is_residual=True, patch_size=2, in_channels=12, out_channels=12,
scale_factor_spatial=16)` (its three down-samplers and the patch: 16x in space), torch seed 3, weights redrawn
from N(0, 0.5) so that every path matters; `expected.safetensors`: `latents` [48, 3, 1, 2]
(seed 4, normal) and `video` = `vae.decode(latents * latents_std + latents_mean)` [3, 9, 16, 32]
(three latent frames: the causal cache and the first chunk's dropped frames both exercised);
`encode_video` [3, 9, 16, 32] and `encode_image` [3, 1, 16, 32] (seed 6, uniform in [-1, 1])
with `encoded_video` [48, 3, 1, 2] and `encoded_image` [48, 1, 1, 2], their normalised latents
(`encodings` below; shared by tests/reference/wan_vae_fixture.py).

Run from the repository root:  python tests/reference/wan22_vae_fixture.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "wan22_vae_tiny"


def encodings(vae: AutoencoderKLWan, size: tuple[int, int], seed: int) -> dict[str, torch.Tensor]:
    """A random video of nine frames (the first chunk alone, then two of four: the causal cache
    and the time down-samplers both exercised) and a one-frame image, in [-1, 1], with their
    latents as the image-to-video pipeline makes them:
    `(vae.encode(x).latent_dist.mode() - latents_mean) / latents_std`."""
    torch.manual_seed(seed)
    video = torch.rand(3, 9, *size) * 2 - 1
    image = torch.rand(3, 1, *size) * 2 - 1
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(z, 1, 1, 1)
    out = {"encode_video": video, "encode_image": image}
    with torch.no_grad():
        for name, x in (("video", video), ("image", image)):
            moments = vae.encode(x.unsqueeze(0)).latent_dist.mode()[0]
            out[f"encoded_{name}"] = ((moments - mean) / std).float().contiguous()
    return out


def main() -> None:
    torch.manual_seed(3)
    vae = AutoencoderKLWan(
        base_dim=2,
        decoder_base_dim=4,
        z_dim=48,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        is_residual=True,
        patch_size=2,
        in_channels=12,
        out_channels=12,
        latents_mean=[0.01 * i - 0.2 for i in range(48)],
        latents_std=[0.5 + 0.02 * i for i in range(48)],
        scale_factor_spatial=16,
    ).eval()
    with torch.no_grad():
        for parameter in vae.parameters():
            parameter.normal_(0.0, 0.5)
    if OUT.exists():
        shutil.rmtree(OUT)
    vae.save_pretrained(OUT, safe_serialization=True)
    torch.manual_seed(4)
    latents = torch.randn(48, 3, 1, 2)
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    with torch.no_grad():
        video = vae.decode((latents * std + mean).unsqueeze(0), return_dict=False)[0][0]
    out = {"latents": latents.contiguous(), "video": video.float().contiguous()}
    out.update(encodings(vae, (16, 32), seed=6))
    save_file(
        out,
        OUT / "expected.safetensors",
        metadata={"versions": json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__})},
    )
    print(f"wrote {OUT}: {({name: list(t.shape) for name, t in out.items()})}")


if __name__ == "__main__":
    main()
