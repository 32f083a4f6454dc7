"""Prompt embeddings for `stepscope record`, encoded by a Wan pipeline's own text encoder.

`stepscope record --prompt-embeds FILE` reads the tensor `prompt_embeds` `[1, L, text_dim]` from a
safetensors file, and `--negative-prompt-embeds FILE` reads a tensor of the same name from a
second file. `save_prompt_embeds` writes exactly that: the embeddings `pipe.encode_prompt` gives
(UMT5 for Wan, zero-padded to `max_sequence_length` tokens as the pipelines pass them to the
transformer), as f32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from . import __version__
from .writer import replace_file

EMBEDS_TENSOR = "prompt_embeds"
"""The tensor name `stepscope record` reads from `--prompt-embeds` and `--negative-prompt-embeds`."""

MAX_SEQUENCE_LENGTH = 512
"""The text length the Wan pipelines use by default (their `__call__`'s `max_sequence_length`)."""


def encode_prompt(
    pipe: Any,
    prompt: str,
    negative_prompt: str | None = None,
    max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(prompt_embeds, negative_prompt_embeds)`, each `[1, L, text_dim]` f32 on the CPU, from the
    pipeline's own `encode_prompt` (the negative is `None` unless `negative_prompt` is given)."""
    if not isinstance(prompt, str):
        raise TypeError(f"encode one prompt (a str) at a time, not {type(prompt).__name__}")
    if getattr(pipe, "text_encoder", None) is None or getattr(pipe, "tokenizer", None) is None:
        raise ValueError("the pipeline has no text encoder or tokenizer; load it with them to encode a prompt")
    with torch.no_grad():
        positive, negative = pipe.encode_prompt(
            prompt=prompt,
            negative_prompt=negative_prompt,
            do_classifier_free_guidance=negative_prompt is not None,
            num_videos_per_prompt=1,
            max_sequence_length=max_sequence_length,
            device=device,
        )
    negative = negative.float().cpu() if negative_prompt is not None and negative is not None else None
    return positive.float().cpu(), negative


def write_embeds(path: str | os.PathLike[str], embeds: torch.Tensor, metadata: dict[str, str] | None = None) -> Path:
    """Writes `embeds` `[1, L, text_dim]` (or `[L, text_dim]`) as the tensor `prompt_embeds` to
    `path` (atomically), the form `stepscope record --prompt-embeds` reads."""
    if embeds.dim() == 2:
        embeds = embeds.unsqueeze(0)
    if embeds.dim() != 3 or embeds.shape[0] != 1 or 0 in embeds.shape:
        raise ValueError(f"prompt embeddings must be [1, L, text_dim] with L, text_dim > 0, not {list(embeds.shape)}")
    if not torch.isfinite(embeds).all():
        raise ValueError("the prompt embeddings contain NaN or infinite values")
    data = save({EMBEDS_TENSOR: embeds.detach().float().cpu().contiguous()}, metadata=metadata)
    path = Path(path)
    replace_file(path, lambda: [data])
    return path


def save_prompt_embeds(
    pipe: Any,
    prompt: str,
    path: str | os.PathLike[str],
    negative_prompt: str | None = None,
    negative_path: str | os.PathLike[str] | None = None,
    max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    device: torch.device | str | None = None,
) -> list[Path]:
    """Encodes `prompt` (and `negative_prompt`, written to `negative_path`) with the pipeline's
    text encoder and writes the files `stepscope record --prompt-embeds path
    [--negative-prompt-embeds negative_path]` reads. Returns the paths written."""
    if (negative_prompt is None) != (negative_path is None):
        raise ValueError("give both `negative_prompt` and `negative_path`, or neither")
    positive, negative = encode_prompt(pipe, prompt, negative_prompt, max_sequence_length, device)
    encoder = getattr(pipe.text_encoder, "config", None)
    common = {
        "created_by": f"stepscope_export {__version__}",
        "text_encoder": str(getattr(encoder, "_name_or_path", "") or type(pipe.text_encoder).__name__),
        "max_sequence_length": str(max_sequence_length),
    }
    written = [write_embeds(path, positive, {**common, "prompt": prompt})]
    if negative is not None and negative_path is not None:
        written.append(write_embeds(negative_path, negative, {**common, "prompt": negative_prompt or ""}))
    return written
