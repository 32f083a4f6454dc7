"""Tensor names of a Stepscope trajectory file and the order writers lay them out in.

The names are the contract of `engine/TRAJECTORY_FORMAT.md` ("Tensor names"); indices are 0-based
decimal numbers without leading zeros:

    s{s}/k{k}/latents | velocity | x0     the step tensors of seed s at step k
    s{s}/k{k}/video                        that step's x0 decoded to RGB by the pipeline's VAE
    s{s}/final/latents                     the latents after the last step
    s{s}/k{k}/layer{l}/{kind}              a capture of transformer block l

The file order is the Rust `TensorName` ordering: by seed, then by step (the final latents after
every step), and within a step the step tensors (latents, velocity, x0), then the video, then the
captures (by layer, then kind in `CAPTURE_KINDS` order).
"""

from __future__ import annotations

import re
from typing import NamedTuple

STEP_TENSORS: tuple[str, ...] = ("latents", "velocity", "x0")
"""Every per-step tensor, in file order."""

VIDEO = "video"
"""The kind of `s{s}/k{k}/video`, a step's `x0` decoded to pixels (after the step tensors in file order)."""

CAPTURE_KINDS: tuple[str, ...] = ("decoded", "token_norm", "pca3", "self_attn", "cross_attn", "hidden", "x0")
"""Every capture kind, in file order."""

ATTENTION_KINDS: frozenset[str] = frozenset({"self_attn", "cross_attn"})
"""The capture kinds that need `captures.query_tokens`."""

_INDEX = r"(0|[1-9][0-9]*)"
_PATTERN = re.compile(
    rf"s{_INDEX}/(?:final/(?P<final>latents)|k{_INDEX}/(?:layer{_INDEX}/(?P<kind>[a-z0-9_]+)|(?P<step>[a-z0-9_]+)))"
)


class TensorName(NamedTuple):
    """One parsed tensor name.

    `step` is `None` for the final latents; `layer` is `None` for everything but captures;
    `kind` is a step tensor (`latents`, `velocity`, `x0`), `video`, or a capture kind.
    """

    seed: int
    step: int | None
    layer: int | None
    kind: str

    def __str__(self) -> str:
        if self.step is None:
            return f"s{self.seed}/final/latents"
        if self.layer is None:
            return f"s{self.seed}/k{self.step}/{self.kind}"
        return f"s{self.seed}/k{self.step}/layer{self.layer}/{self.kind}"

    @property
    def is_capture(self) -> bool:
        """Whether this names a per-layer capture."""
        return self.layer is not None

    @property
    def is_video(self) -> bool:
        """Whether this names a decoded video `s{s}/k{k}/video`."""
        return self.layer is None and self.kind == VIDEO

    def order_key(self) -> tuple:
        """The key that sorts names in file order (mirrors the Rust `TensorName` ordering)."""
        if self.step is None:
            return (self.seed, 1, 0, (0,), -1)
        if self.kind == VIDEO and self.layer is None:
            return (self.seed, 0, self.step, (0,), len(STEP_TENSORS))
        if self.layer is None:
            return (self.seed, 0, self.step, (0,), STEP_TENSORS.index(self.kind))
        return (self.seed, 0, self.step, (1, self.layer, CAPTURE_KINDS.index(self.kind)), -1)


def step_name(seed: int, step: int, kind: str) -> str:
    """`s{seed}/k{step}/{kind}` for a step tensor `kind` in `STEP_TENSORS`."""
    if kind not in STEP_TENSORS:
        raise ValueError(f"`{kind}` is not a step tensor (known: {', '.join(STEP_TENSORS)})")
    return str(TensorName(seed, step, None, kind))


def video_name(seed: int, step: int) -> str:
    """`s{seed}/k{step}/video`."""
    return str(TensorName(seed, step, None, VIDEO))


def final_name(seed: int) -> str:
    """`s{seed}/final/latents`."""
    return str(TensorName(seed, None, None, "latents"))


def capture_name(seed: int, step: int, layer: int, kind: str) -> str:
    """`s{seed}/k{step}/layer{layer}/{kind}` for a capture `kind` in `CAPTURE_KINDS`."""
    if kind not in CAPTURE_KINDS:
        raise ValueError(f"`{kind}` is not a capture kind (known: {', '.join(CAPTURE_KINDS)})")
    return str(TensorName(seed, step, layer, kind))


def parse_name(text: str) -> TensorName:
    """Parses a tensor name; raises `ValueError` saying why `text` is not one."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(
            f"`{text}` is not a trajectory tensor name (expected `s{{s}}/k{{k}}/latents|velocity|x0|video`, "
            "`s{s}/final/latents` or `s{s}/k{k}/layer{l}/KIND`, indices without leading zeros)"
        )
    seed = int(match.group(1))
    if match.group("final"):
        return TensorName(seed, None, None, "latents")
    step = int(match.group(3))
    if match.group("kind") is not None:
        kind = match.group("kind")
        if kind not in CAPTURE_KINDS:
            raise ValueError(f"`{text}`: `{kind}` is not a capture kind (known: {', '.join(CAPTURE_KINDS)})")
        return TensorName(seed, step, int(match.group(4)), kind)
    kind = match.group("step")
    if kind not in STEP_TENSORS and kind != VIDEO:
        raise ValueError(f"`{text}`: `{kind}` is not a step tensor or `{VIDEO}` (known: {', '.join(STEP_TENSORS)})")
    return TensorName(seed, step, None, kind)
