#!/usr/bin/env python3
"""A Wan transformer folder at a real size, with random weights, to check real-size loading.

No real checkpoint can be downloaded where Stepscope is developed, but the diffusers-format Wan
checkpoints hold exactly the state dict of `WanTransformer3DModel` for their `config.json`, so a
randomly initialised model saved by diffusers has the same key names, shapes, sharding and index
file as the published one. Run by hand (never in CI):

    python tests/reference/random_real_size_wan.py tests/fixtures/wan21/t2v_1_3b/config.json OUT_DIR

writes `OUT_DIR/config.json`, bf16 `diffusion_pytorch_model-0000N-of-0000M.safetensors` shards
of at most 1 GB with `diffusion_pytorch_model.safetensors.index.json`, and
`OUT_DIR/prompt_embeds.safetensors` (`prompt_embeds` `[1, 16, text_dim]`, random).
"""
import json
import sys
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import save_file


def main() -> int:
    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = {k: v for k, v in json.loads(config_path.read_text()).items() if not k.startswith("_")}
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = WanTransformer3DModel(**config).to(torch.bfloat16)
    model.save_pretrained(out, max_shard_size="1GB", safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    embeds = torch.randn(1, 16, config["text_dim"])
    save_file({"prompt_embeds": embeds}, str(out / "prompt_embeds.safetensors"))
    print(f"{params} parameters written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
