"""The `stepscope-export` command line: export a Wan text-to-video run, encode a prompt, check a file.

    stepscope-export t2v --model Wan-AI/Wan2.1-T2V-1.3B-Diffusers --prompt "A cat walks" \\
        --seed 42 --steps 50 --size 480x832 --frames 81 --guidance 5 \\
        --capture "token_norm,pca3@0,15,29;self_attn,cross_attn@15:q=0,1000" -o run.safetensors
    stepscope-export encode-prompt --model Wan-AI/Wan2.1-T2V-1.3B-Diffusers --prompt "A cat walks" \\
        -o prompt.safetensors [--negative-prompt "" --negative-output negative.safetensors]
    stepscope-export check run.safetensors

`--capture` has the syntax of `stepscope record --capture`: groups `KINDS@LAYERS[:q=QUERIES]`
separated by `;`, LAYERS `all` or a list of indices and ranges (`0,2,4-7`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .capture import CaptureRequest
from .check import TrajectoryFileError, check_file


def parse_indices(text: str) -> list[int]:
    """`0,2,4-7` -> `[0, 2, 4, 5, 6, 7]`."""
    indices: list[int] = []
    for item in text.split(","):
        start, _, end = item.strip().partition("-")
        if end:
            indices.extend(range(int(start), int(end) + 1))
        else:
            indices.append(int(start))
    return indices


def parse_capture(text: str, num_layers: int, steps: Sequence[int] | None = None) -> CaptureRequest:
    """A `--capture` text (as `stepscope record` takes it) as one request: the union of the kinds
    at the union of the layers (a trajectory stores one grid of layers x kinds)."""
    kinds: list[str] = []
    layers: set[int] = set()
    queries: list[int] = []
    for group in filter(None, (part.strip() for part in text.split(";"))):
        kinds_text, at, rest = group.partition("@")
        if not at:
            raise ValueError(f"capture group `{group}` needs `@LAYERS` (e.g. `token_norm@all`)")
        layers_text, colon, queries_text = rest.partition(":")
        if colon:
            if not queries_text.startswith("q="):
                raise ValueError(f"expected `q=` after `:` in `{group}`")
            group_queries = parse_indices(queries_text[2:])
            if queries and group_queries != queries:
                raise ValueError("all attention groups must use the same query tokens")
            queries = group_queries
        kinds.extend(kind.strip() for kind in kinds_text.split(","))
        layers.update(range(num_layers) if layers_text.strip() == "all" else parse_indices(layers_text))
    return CaptureRequest(layers=sorted(layers), kinds=kinds, query_tokens=queries, steps=steps)


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.lower().partition("x")
    return int(height), int(width)


def _load_pipeline(model: str, dtype: str, device: str):  # noqa: ANN202 (diffusers type)
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline

    torch_dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    vae = AutoencoderKLWan.from_pretrained(model, subfolder="vae", torch_dtype=torch.float32)
    pipe = WanPipeline.from_pretrained(model, vae=vae, torch_dtype=torch_dtype)
    return pipe.to(device)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stepscope-export", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    t2v = commands.add_parser("t2v", help="run a WanPipeline and write its trajectory")
    t2v.add_argument("--model", required=True, help="diffusers Wan checkpoint (hub name or folder)")
    t2v.add_argument("--prompt", required=True)
    t2v.add_argument("--negative-prompt", default=None)
    t2v.add_argument("--seed", type=int, action="append", required=True, help="Stepscope noise seed (repeatable)")
    t2v.add_argument("--steps", type=int, default=50)
    t2v.add_argument("--size", type=_size, default=(480, 832), help="HEIGHTxWIDTH in pixels")
    t2v.add_argument("--frames", type=int, default=81)
    t2v.add_argument("--guidance", type=float, default=5.0)
    t2v.add_argument("--capture", default=None, help="e.g. 'token_norm,pca3@all;self_attn@10:q=0,17'")
    t2v.add_argument("--capture-steps", type=parse_indices, default=None, help="e.g. '0,10,20-25' (default: all)")
    t2v.add_argument("--dtype", choices=("f32", "bf16", "f16"), default="bf16", help="model compute dtype")
    t2v.add_argument("--store", choices=("f32", "bf16", "f16"), default="f32", help="step tensor storage")
    t2v.add_argument("--capture-store", choices=("f32", "bf16", "f16"), default="f16")
    t2v.add_argument("--device", default="cuda")
    t2v.add_argument("-o", "--output", required=True)

    encode = commands.add_parser("encode-prompt", help="write prompt embeddings for `stepscope record`")
    encode.add_argument("--model", required=True)
    encode.add_argument("--prompt", required=True)
    encode.add_argument("--negative-prompt", default=None)
    encode.add_argument("--negative-output", default=None)
    encode.add_argument("--max-sequence-length", type=int, default=512)
    encode.add_argument("--device", default="cpu")
    encode.add_argument("-o", "--output", required=True)

    check = commands.add_parser("check", help="check a trajectory file against the format")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="print the manifest")

    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            manifest = check_file(args.file)
        except (TrajectoryFileError, OSError) as error:
            print(error, file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(manifest, indent=2))
        else:
            seeds = len(manifest["seeds"])
            print(f"{args.file}: a valid trajectory (format version 1), {seeds} seed(s), {manifest['schedule']['steps']} steps")
        return 0
    if args.command == "encode-prompt":
        from transformers import AutoTokenizer, UMT5EncoderModel
        from diffusers import WanPipeline

        from .prompts import save_prompt_embeds

        tokenizer = AutoTokenizer.from_pretrained(args.model, subfolder="tokenizer")
        text_encoder = UMT5EncoderModel.from_pretrained(args.model, subfolder="text_encoder").to(args.device)
        pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=None, scheduler=None, transformer=None)
        for path in save_prompt_embeds(
            pipe, args.prompt, args.output, args.negative_prompt, args.negative_output, args.max_sequence_length, args.device
        ):
            print(f"wrote {path}")
        return 0

    from .pipeline import export_run

    pipe = _load_pipeline(args.model, args.dtype, args.device)
    request = (
        parse_capture(args.capture, pipe.transformer.config.num_layers, args.capture_steps) if args.capture else None
    )
    height, width = args.size
    result = export_run(
        pipe,
        args.output,
        seeds=args.seed,
        capture=request,
        storage=args.store,
        capture_storage=args.capture_store,
        model_source=args.model,
        prompt=args.prompt,
        negative_prompt=args.negative_prompt,
        height=height,
        width=width,
        num_frames=args.frames,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
    )
    print(f"wrote {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
