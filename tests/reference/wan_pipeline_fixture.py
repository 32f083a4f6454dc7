#!/usr/bin/env python3
"""Writes a whole tiny Wan pipeline folder and one run of it from a typed prompt, for
`app/tests/pipeline_run.rs` (the engine's `record --pipeline DIR --prompt ...` against diffusers).

What it writes under tests/fixtures/wan_pipeline_tiny/ (about 400 KB):

  model_index.json, scheduler/, text_encoder/, tokenizer/, transformer/, vae/
      `WanPipeline.save_pretrained` of a pipeline whose parts are all tiny and random: the UMT5
      encoder and tokenizer umt5_fixture.py made (d_model 32; moved here from
      tests/fixtures/umt5_tiny, whose parity test reads them from this folder), the 2-block transformer of
      engine/python/tests/tiny_wan.py (text_dim 32), its 3-channel VAE, and Wan's UniPC
      (flow_shift 3.0). The folder has the layout of a published Wan pipeline.
  expected.safetensors
      `noise` [16, 3, 4, 6] (Stepscope's seeded noise, seed 5), the prompt's and the empty negative
      prompt's embeddings as the pipeline encodes them (`prompt_embeds`, `negative_prompt_embeds`,
      [1, MAX_LEN, 32]), every step's `x0_{k}` (x_t - sigma_k * v, from the velocity the pipeline
      hands the scheduler) and the pipeline's output latents `final`, for the call below; the
      metadata names the prompt, the call and the versions.

The call: `pipe(prompt=PROMPT, negative_prompt=None, height=32, width=48, num_frames=9,
num_inference_steps=4, guidance_scale=3.0, max_sequence_length=MAX_LEN, latents=noise,
output_type="latent")`.

Run from the repository root, after tests/reference/umt5_fixture.py, in a virtualenv with torch,
transformers and diffusers:
    python tests/reference/wan_pipeline_fixture.py
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import diffusers
import torch
import transformers
from diffusers import WanPipeline
from safetensors.torch import save_file
from transformers import T5TokenizerFast, UMT5EncoderModel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "engine" / "python"))
sys.path.insert(0, str(ROOT / "engine" / "python" / "tests"))

import tiny_wan as tw  # noqa: E402
from stepscope_export import stepscope_noise  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny"
UMT5 = ROOT / "tests" / "fixtures" / "umt5_tiny"
PROMPT = "a red ball rolls across a wooden table"
MAX_LEN = 40
STEPS = 4
GUIDANCE = 3.0
SEED = 5


def main() -> None:
    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is installed: diffusers would apply ftfy.fix_text; the fixture is the pipeline without it")
    pipe = WanPipeline(
        tokenizer=T5TokenizerFast.from_pretrained(UMT5 / "tokenizer"),
        text_encoder=UMT5EncoderModel.from_pretrained(UMT5 / "text_encoder").eval(),
        transformer=tw.tiny_transformer(),
        vae=tw.tiny_vae(),
        scheduler=tw.unipc(3.0),
    )
    pipe.set_progress_bar_config(disable=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    pipe.save_pretrained(OUT, safe_serialization=True)
    # The pipeline folder now holds the encoder and tokenizer: one copy in the repository.
    for part in ("tokenizer", "text_encoder"):
        shutil.rmtree(UMT5 / part)

    noise = stepscope_noise(SEED, tw.LATENT_SHAPE)
    x0 = []
    original_step = pipe.scheduler.step

    def recording_step(model_output, timestep, sample, *args, **kwargs):
        k = len(x0)
        sigma = pipe.scheduler.sigmas[k]
        x0.append((sample[0].float() - sigma * model_output[0].float()).contiguous())
        return original_step(model_output, timestep, sample, *args, **kwargs)

    pipe.scheduler.step = recording_step
    with torch.no_grad():
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            PROMPT, None, do_classifier_free_guidance=True, max_sequence_length=MAX_LEN, device=torch.device("cpu")
        )
        final = pipe(
            prompt=PROMPT,
            height=tw.HEIGHT,
            width=tw.WIDTH,
            num_frames=tw.FRAMES,
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            max_sequence_length=MAX_LEN,
            latents=noise.unsqueeze(0),
            output_type="latent",
            return_dict=False,
        )[0][0]
    tensors = {
        "noise": noise.contiguous(),
        "prompt_embeds": prompt_embeds.float().contiguous(),
        "negative_prompt_embeds": negative_embeds.float().contiguous(),
        "final": final.float().contiguous(),
    }
    tensors.update({f"x0_{k}": tensor for k, tensor in enumerate(x0)})
    metadata = {
        "prompt": PROMPT,
        "call": json.dumps(
            {"steps": STEPS, "guidance_scale": GUIDANCE, "max_sequence_length": MAX_LEN, "seed": SEED,
             "size": [tw.FRAMES, tw.HEIGHT, tw.WIDTH]}
        ),
        "versions": json.dumps(
            {"torch": torch.__version__, "transformers": transformers.__version__, "diffusers": diffusers.__version__}
        ),
    }
    save_file(tensors, OUT / "expected.safetensors", metadata=metadata)
    print(f"wrote {OUT}: {len(x0)} steps")


if __name__ == "__main__":
    main()
