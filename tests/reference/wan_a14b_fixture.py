#!/usr/bin/env python3
"""Writes the parts that make the tiny pipeline folder a two-expert one (Wan2.2 A14B's layout:
`transformer` for the high-noise steps, `transformer_2` below `boundary_ratio`), and a run of it,
for `record_switches_experts_at_the_boundary_as_diffusers_does`.

tests/fixtures/wan_pipeline_tiny_a14b/ (about 150 KB): `model_index.json` (boundary_ratio 0.8: steps 2 and 3, at timesteps 750 and 500, are the low-noise expert's),
`transformer_2/` (the tiny transformer of engine/python/tests/tiny_wan.py with seed 7), and
`expected.safetensors`: `noise` (Stepscope seeded noise, seed 5), every step's `x0_{k}` and the
output latents `final` of `pipe(prompt=PROMPT, ..., num_inference_steps=4, guidance_scale=3.0,
max_sequence_length=40, latents=noise, output_type="latent")`. The other parts are those of
tests/fixtures/wan_pipeline_tiny, which the test copies next to these.

Run from the repository root after tests/reference/wan_pipeline_fixture.py:
    python tests/reference/wan_a14b_fixture.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import diffusers
import torch
from diffusers import WanPipeline
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
OUT = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny_a14b"
PROMPT = "a red ball rolls across a wooden table"


def main() -> None:
    # The base folder's parts, made again as wan_pipeline_fixture.py makes them (same seeds).
    pipe = WanPipeline(
        tokenizer=T5TokenizerFast.from_pretrained(BASE / "tokenizer"),
        text_encoder=UMT5EncoderModel.from_pretrained(BASE / "text_encoder").eval(),
        transformer=tw.tiny_transformer(),
        transformer_2=tw.tiny_transformer(seed=7),
        vae=tw.tiny_vae(),
        scheduler=tw.unipc(3.0),
        boundary_ratio=0.8,
    )
    pipe.set_progress_bar_config(disable=True)
    save_parts(pipe, OUT, ("transformer_2",))

    noise = stepscope_noise(5, tw.LATENT_SHAPE)
    x0 = record_x0(pipe)
    with torch.no_grad():
        final = pipe(
            prompt=PROMPT, height=tw.HEIGHT, width=tw.WIDTH, num_frames=tw.FRAMES, num_inference_steps=4,
            guidance_scale=3.0, max_sequence_length=40, latents=noise.unsqueeze(0), output_type="latent",
            return_dict=False,
        )[0][0]
    tensors = {"noise": noise.contiguous(), "final": final.float().contiguous()}
    tensors.update({f"x0_{k}": tensor for k, tensor in enumerate(x0)})
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    metadata = {
        "prompt": PROMPT,
        "timesteps": json.dumps(timesteps),
        "versions": json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__}),
    }
    save_file(tensors, OUT / "expected.safetensors", metadata=metadata)
    print(f"wrote {OUT}: timesteps {timesteps}, boundary 800")


if __name__ == "__main__":
    main()
