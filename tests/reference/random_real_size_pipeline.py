#!/usr/bin/env python3
"""A whole Wan2.1 T2V 1.3B pipeline folder at its real size, with random weights, to check that
Stepscope loads and runs a real pipeline (text encoder, transformer, VAE) on this machine.

The published weights cannot be downloaded where Stepscope is developed; what makes a folder
real for loading is its layout: the key names, shapes, dtypes, shards and index files, which
these classes write for the published configs:

- `transformer/`: diffusers' `WanTransformer3DModel` for tests/fixtures/wan21/t2v_1_3b/config.json,
  bf16 shards of at most 1 GB (as tests/reference/random_real_size_wan.py);
- `vae/`: diffusers' `AutoencoderKLWan()` (its defaults are Wan2.1's VAE, latents_mean and
  latents_std included), f32, one file;
- `text_encoder/`: umt5-xxl's `UMT5EncoderModel` config (5.7 B parameters, 24 layers of 4096);
  its tensors are written one at a time, in bf16, into shards of at most 4 GB with
  `model.safetensors.index.json` (the whole model never exists at once: it would need 23 GB in
  f32), with the names and shapes of the model built on the meta device and what
  `save_pretrained` keeps (`shared.weight`, not the tied `encoder.embed_tokens.weight`);
  values N(0, 1/fan_in) for projections, N(0, 1) for the embedding, ones for the norms;
- `tokenizer/`: a SYNTHETIC tokenizer with umt5's vocabulary size (256,384): the tiny fixture's
  Unigram tokenizer (tests/fixtures/wan_pipeline_tiny/tokenizer) with filler pieces appended,
  so that the encoder and tokenizer agree on the size; it is not umt5's tokenizer;
- `scheduler/`, `model_index.json`: the tiny fixture's (UniPC, flow shift 3, as Wan2.1 1.3B).

Run by hand (never in CI; about 17 GB on disk, 10 minutes):
    python tests/reference/random_real_size_pipeline.py OUT_DIR
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from safetensors.torch import save_file
from transformers import UMT5Config, UMT5EncoderModel

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny"
UMT5_XXL = dict(
    vocab_size=256_384, d_model=4096, d_kv=64, d_ff=10_240, num_layers=24, num_decoder_layers=24,
    num_heads=64, relative_attention_num_buckets=32, relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True, layer_norm_epsilon=1e-6,
    tie_word_embeddings=False, dropout_rate=0.1, eos_token_id=1, pad_token_id=0, decoder_start_token_id=0,
)
SHARD_BYTES = 4 << 30


def text_encoder(out: Path) -> int:
    config = UMT5Config(**UMT5_XXL)
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items() if name != "encoder.embed_tokens.weight"}
    out.mkdir(parents=True)
    config.architectures = ["UMT5EncoderModel"]
    config.dtype = "bfloat16"
    config.to_json_file(out / "config.json")
    # The shards are planned from the shapes, then written one at a time (at most 4 GB held).
    plan: list[list[str]] = [[]]
    planned = 0
    for name in sorted(shapes):
        nbytes = 2 * torch.Size(shapes[name]).numel()
        if plan[-1] and planned + nbytes > SHARD_BYTES:
            plan.append([])
            planned = 0
        plan[-1].append(name)
        planned += nbytes
    generator = torch.Generator().manual_seed(0)
    weight_map = {}
    for k, names in enumerate(plan):
        shard = {}
        for name in names:
            shape = shapes[name]
            if name.endswith("layer_norm.weight"):
                tensor = torch.ones(shape)
            elif name == "shared.weight":
                tensor = torch.randn(shape, generator=generator)
            else:
                tensor = torch.randn(shape, generator=generator) / shape[-1] ** 0.5
            shard[name] = tensor.to(torch.bfloat16)
        file = f"model-{k + 1:05d}-of-{len(plan):05d}.safetensors"
        save_file(shard, str(out / file), metadata={"format": "pt"})
        weight_map.update({name: file for name in names})
    parameters = sum(torch.Size(shape).numel() for shape in shapes.values())
    index = {"metadata": {"total_size": 2 * parameters}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return parameters


def tokenizer(out: Path) -> None:
    shutil.copytree(TINY / "tokenizer", out)
    data = json.loads((out / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    vocab.extend([f"▁filler{k}", -30.0] for k in range(UMT5_XXL["vocab_size"] - len(vocab)))
    (out / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))


def main() -> int:
    out = Path(sys.argv[1])
    if out.exists():
        sys.exit(f"{out} exists: give a new folder")
    out.mkdir(parents=True)
    shutil.copy(TINY / "model_index.json", out / "model_index.json")
    shutil.copytree(TINY / "scheduler", out / "scheduler")
    tokenizer(out / "tokenizer")
    print(f"text encoder: {text_encoder(out / 'text_encoder')} parameters")
    config_path = ROOT / "tests" / "fixtures" / "wan21" / "t2v_1_3b" / "config.json"
    config = {k: v for k, v in json.loads(config_path.read_text()).items() if not k.startswith("_")}
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**config).to(torch.bfloat16)
    transformer.save_pretrained(out / "transformer", max_shard_size="1GB", safe_serialization=True)
    print(f"transformer: {sum(p.numel() for p in transformer.parameters())} parameters")
    del transformer
    torch.manual_seed(1)
    vae = AutoencoderKLWan()
    vae.save_pretrained(out / "vae", safe_serialization=True)
    print(f"VAE: {sum(p.numel() for p in vae.parameters())} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
