#!/usr/bin/env python3
"""Writes a tiny Wan2.2 TI2V image-to-video pipeline (`WanImageToVideoPipeline` with
`expand_timesteps`: the image's VAE latent is the clean first latent frame, whose tokens get
timestep 0) and diffusers' run of it from an image and a typed prompt, for
`record_runs_image_to_video_from_an_image_as_diffusers_does`.

tests/fixtures/wan_pipeline_tiny_ti2v/ (about 250 KB): `model_index.json`, `transformer/` (the
tiny transformer of engine/python/tests/tiny_wan.py with 48 latent channels in and out, seed 8),
`image.png` (random RGB, seed 9, already 96 x 64 so that no resampling is involved) and
`expected.safetensors`: `noise` (Stepscope seeded noise, seed 5, [48, 3, 4, 6]), every step's
`x0_{k}` (`latents - sigma * v` of the latents the scheduler steps, whose first frame diffusers
leaves noisy) and `final` (with the image's latent put back on the first frame, as the pipeline
returns it) of `pipe(image, prompt=PROMPT, height=64, width=96, num_frames=9,
num_inference_steps=4, guidance_scale=3.0, max_sequence_length=40, latents=noise,
output_type="latent")`. The text encoder, tokenizer and scheduler are those of
tests/fixtures/wan_pipeline_tiny and the VAE is tests/fixtures/wan22_vae_tiny (48 channels, 16x
in space); the test copies them next to these.

Run from the repository root after tests/reference/wan_pipeline_fixture.py and
tests/reference/wan22_vae_fixture.py:
    python tests/reference/wan_ti2v_fixture.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import diffusers
import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline, WanTransformer3DModel
from PIL import Image
from safetensors.torch import save_file
from transformers import T5TokenizerFast, UMT5EncoderModel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "engine" / "python"))
sys.path.insert(0, str(ROOT / "engine" / "python" / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny_wan as tw  # noqa: E402
from pipeline_runs import record_x0, save_parts  # noqa: E402
from stepscope_export import stepscope_noise  # noqa: E402

BASE = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny"
VAE = ROOT / "tests" / "fixtures" / "wan22_vae_tiny"
OUT = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny_ti2v"
PROMPT = "the red ball in the picture rolls to the left"
FRAMES, HEIGHT, WIDTH = 9, 64, 96
CHANNELS = 48


def transformer() -> WanTransformer3DModel:
    torch.manual_seed(8)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=tw.HEADS,
        attention_head_dim=tw.HEAD_DIM,
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        text_dim=tw.TEXT_DIM,
        freq_dim=32,
        ffn_dim=48,
        num_layers=tw.NUM_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    ).eval()


def main() -> None:
    # diffusers' image-to-video pipeline calls ftfy even where ftfy is not installed (a
    # NameError); ftfy leaves this ASCII prompt as it is, so an identity stands in for it.
    import diffusers.pipelines.wan.pipeline_wan_i2v as i2v

    if not hasattr(i2v, "ftfy"):
        i2v.ftfy = SimpleNamespace(fix_text=lambda text: text)
    pipe = WanImageToVideoPipeline(
        tokenizer=T5TokenizerFast.from_pretrained(BASE / "tokenizer"),
        text_encoder=UMT5EncoderModel.from_pretrained(BASE / "text_encoder").eval(),
        transformer=transformer(),
        vae=AutoencoderKLWan.from_pretrained(VAE).eval(),
        scheduler=tw.unipc(3.0),
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    save_parts(pipe, OUT, ("transformer",))

    generator = torch.Generator().manual_seed(9)
    pixels = (torch.rand(HEIGHT, WIDTH, 3, generator=generator) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels, mode="RGB")
    image.save(OUT / "image.png")

    latent_shape = [CHANNELS, 1 + (FRAMES - 1) // 4, HEIGHT // 16, WIDTH // 16]
    noise = stepscope_noise(5, latent_shape)
    x0 = record_x0(pipe)
    with torch.no_grad():
        final = pipe(
            image=Image.open(OUT / "image.png"), prompt=PROMPT, height=HEIGHT, width=WIDTH,
            num_frames=FRAMES, num_inference_steps=4, guidance_scale=3.0, max_sequence_length=40,
            latents=noise.unsqueeze(0), output_type="latent", return_dict=False,
        )[0][0]
    tensors = {"noise": noise.contiguous(), "final": final.float().contiguous()}
    tensors.update({f"x0_{k}": tensor for k, tensor in enumerate(x0)})
    metadata = {
        "prompt": PROMPT,
        "size": f"{latent_shape[1]}x{latent_shape[2]}x{latent_shape[3]}",
        "versions": json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__}),
    }
    save_file(tensors, OUT / "expected.safetensors", metadata=metadata)
    print(f"wrote {OUT}: latents {latent_shape}")


if __name__ == "__main__":
    main()
