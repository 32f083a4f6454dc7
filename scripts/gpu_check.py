#!/usr/bin/env python3
"""The diffusers side of scripts/gpu-check.sh, on the GPU machine (PyTorch and diffusers, no
network). Subcommands:

  compare A B TOL          every tensor two trajectory files share, max |a - b|, fails above TOL
  realsize DIR             a real-size Wan2.1 1.3B pipeline folder with random weights: the
                           transformer and VAE in the published layouts (as
                           tests/reference/random_real_size_pipeline.py writes them), a
                           one-layer UMT5 of width 4096 (the transformer's text width; the real
                           encoder's 11 GB would not be made in time) and the tiny tokenizer
  time DIR F H W           one forward of DIR/transformer in bf16 on cuda:0 at latent F x H x W
                           (with a 512-token random prompt), median of 5 after 2 warm-ups, and
                           the VAE decoding those latents; prints `diffusers step_ms` and
                           `diffusers decode_ms` lines the shell script reads
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]


def compare(a: str, b: str, tolerance: float) -> int:
    worst, count = 0.0, 0
    with safe_open(a, "pt") as fa, safe_open(b, "pt") as fb:
        shared = sorted(set(fa.keys()) & set(fb.keys()))
        for name in shared:
            x, y = fa.get_tensor(name).float(), fb.get_tensor(name).float()
            if x.shape != y.shape:
                print(f"  {name}: shapes {list(x.shape)} and {list(y.shape)}")
                return 1
            error = (x - y).abs().max().item() if x.numel() else 0.0
            worst = max(worst, error)
            count += 1
    verdict = "ok" if worst <= tolerance and count > 0 else "FAILED"
    print(f"  {count} tensors, max |cuda - cpu| {worst:.2e} (tolerance {tolerance:g}): {verdict}")
    return 0 if verdict == "ok" else 1


def realsize(out: Path) -> int:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tiny = ROOT / "tests" / "fixtures" / "wan_pipeline_tiny"
    out.mkdir(parents=True)
    shutil.copy(tiny / "model_index.json", out / "model_index.json")
    for part in ("scheduler", "tokenizer"):
        shutil.copytree(tiny / part, out / part)
    vocab = json.loads((tiny / "text_encoder" / "config.json").read_text())["vocab_size"]
    config = UMT5Config(vocab_size=vocab, d_model=4096, d_kv=64, d_ff=256, num_layers=1, num_heads=8,
                        feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True)
    torch.manual_seed(0)
    UMT5EncoderModel(config).save_pretrained(out / "text_encoder")
    config_path = ROOT / "tests" / "fixtures" / "wan21" / "t2v_1_3b" / "config.json"
    transformer_config = {k: v for k, v in json.loads(config_path.read_text()).items() if not k.startswith("_")}
    with torch.device("cuda"):
        transformer = WanTransformer3DModel(**transformer_config).to(torch.bfloat16)
    transformer.save_pretrained(out / "transformer", max_shard_size="1GB", safe_serialization=True)
    AutoencoderKLWan().save_pretrained(out / "vae", safe_serialization=True)
    print(f"  wrote {out}")
    return 0


def cuda_ms(run, repeats: int = 5, warmups: int = 2) -> float:
    for _ in range(warmups):
        run()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


@torch.inference_mode()
def timing(folder: Path, frames: int, height: int, width: int) -> int:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    transformer = WanTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=torch.bfloat16).to("cuda")
    latents = torch.randn(1, 16, frames, height, width, device="cuda", dtype=torch.bfloat16)
    text = torch.randn(1, 512, 4096, device="cuda", dtype=torch.bfloat16)
    timestep = torch.tensor([999.0], device="cuda")
    step = cuda_ms(lambda: transformer(latents, timestep, text, return_dict=False))
    print(f"diffusers step_ms {step:.1f}")
    del transformer
    torch.cuda.empty_cache()
    vae = AutoencoderKLWan.from_pretrained(folder / "vae", torch_dtype=torch.bfloat16).to("cuda")
    decode = cuda_ms(lambda: vae.decode(latents, return_dict=False), repeats=3, warmups=1)
    print(f"diffusers decode_ms {decode:.1f}")
    print(f"  torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    return 0


def main() -> int:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "compare":
        return compare(args[0], args[1], float(args[2]))
    if command == "realsize":
        return realsize(Path(args[0]))
    if command == "time":
        return timing(Path(args[0]), *map(int, args[1:4]))
    sys.exit(f"unknown subcommand {command}")


if __name__ == "__main__":
    sys.exit(main())
