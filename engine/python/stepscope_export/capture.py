"""Captures from inside a diffusers `WanTransformer3DModel`, reduced as the Stepscope engine does.

For the chosen blocks `transformer.blocks[l]`, at the chosen steps, in the conditional forward
pass only (as the engine, which captures the pass with the prompt, not the negative one):

- forward hooks on the blocks take the block's output tokens `[1, N, D]` and reduce them at once
  (`decoded`, `token_norm`, `pca3`, `hidden`; see `reduce.py` and `logit_lens`);
- `x0`, each layer's prediction of the clean latents, needs the logit lens of both passes when
  guidance is on: the hooks then also run, for the lens alone, in the unconditional pass that
  follows the conditional one, and `take` combines them as the sampler combines the final
  velocity (`v_u + g (v_c - v_u)`) into `x_t - sigma * v_l`, the condition frames re-imposed;
- an explicit-softmax attention processor on the blocks' `attn1` / `attn2` keeps, for the query
  tokens asked for, `softmax(q k^T / sqrt(d))` over all keys (`self_attn` `[heads, Q, N]`,
  `cross_attn` `[heads, Q, L]`), with q and k computed as diffusers' `WanAttnProcessor` computes
  them (projections, RMS qk norm across heads, RoPE on self-attention). The block's output is the
  original processor's, untouched: capturing never changes the run.

Shapes: `N = F' * H' * W'` tokens in frame-major order, `D` the model width, `L` the text length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import reduce
from .names import ATTENTION_KINDS, CAPTURE_KINDS

Grid = tuple[int, int, int]


@dataclass(frozen=True)
class CaptureRequest:
    """What to capture inside the transformer.

    `layers`: block indices; `kinds`: capture kinds of the format (`decoded`, `token_norm`,
    `pca3`, `self_attn`, `cross_attn`, `hidden`), every kind taken at every layer (the file stores
    a grid); `query_tokens`: flat token indices for the attention kinds; `steps`: the steps to
    capture at (`None`: every step).
    """

    layers: Sequence[int]
    kinds: Sequence[str]
    query_tokens: Sequence[int] = ()
    steps: Sequence[int] | None = None

    def normalised(self, num_layers: int) -> CaptureRequest:
        """The request with sorted, distinct layers and kinds in file order, checked against a
        model of `num_layers` blocks; raises `ValueError` saying what is wrong."""
        unknown = [kind for kind in self.kinds if kind not in CAPTURE_KINDS]
        if unknown:
            raise ValueError(f"unknown capture kind `{unknown[0]}` (known: {', '.join(CAPTURE_KINDS)})")
        layers = sorted(set(self.layers))
        bad = [layer for layer in layers if not 0 <= layer < num_layers]
        if bad:
            raise ValueError(f"layer {bad[0]} does not exist (the model has {num_layers} blocks, 0..={num_layers - 1})")
        if not layers or not self.kinds:
            raise ValueError("a capture request needs at least one layer and one kind")
        kinds = [kind for kind in CAPTURE_KINDS if kind in self.kinds]
        queries = list(self.query_tokens)
        if any(kind in ATTENTION_KINDS for kind in kinds):
            if not queries:
                raise ValueError("attention captures need query tokens (`query_tokens`)")
        else:
            queries = []
        steps = None if self.steps is None else sorted(set(self.steps))
        return CaptureRequest(layers=layers, kinds=kinds, query_tokens=queries, steps=steps)


def logit_lens(transformer: torch.nn.Module, hidden: torch.Tensor, temb: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Block output tokens `[1, N, D]` sent through the model's output head (modulated `norm_out`,
    `proj_out`) and unpatchified, as the model's own last lines do: `[C_out, F, H, W]`, f32."""
    table = transformer.scale_shift_table
    if temb.dim() == 3:  # per-token timesteps (Wan2.2 TI2V): temb [1, N, D]
        shift, scale = (table.unsqueeze(0).to(temb.device) + temb.unsqueeze(2)).chunk(2, dim=2)
        shift, scale = shift.squeeze(2), scale.squeeze(2)
    else:  # temb [1, D]
        shift, scale = (table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
    shift, scale = shift.to(hidden.device), scale.to(hidden.device)
    normed = (transformer.norm_out(hidden.float()) * (1 + scale) + shift).type_as(hidden)
    patches = transformer.proj_out(normed)
    p_t, p_h, p_w = transformer.config.patch_size
    frames, rows, cols = grid
    video = patches.reshape(1, frames, rows, cols, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return video.flatten(6, 7).flatten(4, 5).flatten(2, 3)[0].float()


def _projections(attn: Any, hidden_states: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The query (from `hidden_states`) and key (from `context`) projections, fused or not."""
    if getattr(attn, "fused_projections", False):
        if not attn.is_cross_attention:
            query, key, _ = attn.to_qkv(hidden_states).chunk(3, dim=-1)
            return query, key
        key, _ = attn.to_kv(context).chunk(2, dim=-1)
        return attn.to_q(hidden_states), key
    return attn.to_q(hidden_states), attn.to_k(context)


def _rotate(states: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """RoPE on interleaved pairs, as diffusers' `WanAttnProcessor` applies it: `[B, N, heads, d]`."""
    x1, x2 = states.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(states)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(states)


def attention_probs(
    attn: Any,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor | None,
    rotary_emb: tuple[torch.Tensor, torch.Tensor] | None,
    query_tokens: Sequence[int],
) -> torch.Tensor:
    """`softmax(q k^T / sqrt(d))` of the query tokens over every key: `[heads, Q, keys]`, f32.

    `attn` is a diffusers `WanAttention`, called as in `WanTransformerBlock`: `hidden_states`
    `[1, N, D]` (already normed and modulated), `encoder_hidden_states` the text (`None` for
    self-attention), `rotary_emb` the RoPE tables (self-attention only). For models with an image
    context (Wan2.1 I2V, whose cross-attention also attends to image tokens in a separate
    softmax), the probabilities over the text tokens are returned.
    """
    if hidden_states.shape[0] != 1:
        raise ValueError(f"attention captures take one sample at a time, got a batch of {hidden_states.shape[0]}")
    context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
    if encoder_hidden_states is not None and attn.add_k_proj is not None:
        # As `WanAttnProcessor`: the last 512 context tokens are the text, the first the image.
        context = encoder_hidden_states[:, encoder_hidden_states.shape[1] - 512 :]
    query, key = _projections(attn, hidden_states, context)
    query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
    key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
    if rotary_emb is not None:
        query = _rotate(query, *rotary_emb)
        key = _rotate(key, *rotary_emb)
    index = torch.as_tensor(list(query_tokens), dtype=torch.long, device=query.device)
    query = query[0].index_select(0, index).transpose(0, 1).float()  # [heads, Q, d]
    key = key[0].transpose(0, 1).float()  # [heads, keys, d]
    scores = query @ key.transpose(1, 2) / math.sqrt(query.shape[-1])
    return scores.softmax(dim=-1)


class _ProbsProcessor:
    """An attention processor that runs the block's own processor and, while its owner is armed,
    also records the explicit attention probabilities of the query tokens."""

    def __init__(self, inner: Any, on_probs: Callable[[torch.Tensor], None], armed: Callable[[], bool], queries: Sequence[int]):
        self.inner = inner
        self.on_probs = on_probs
        self.armed = armed
        self.queries = list(queries)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb, **kwargs)
        if self.armed():
            with torch.no_grad():
                self.on_probs(attention_probs(attn, hidden_states, encoder_hidden_states, rotary_emb, self.queries))
        return out


@dataclass
class _PassState:
    armed: bool = False
    grid: Grid | None = None
    temb: torch.Tensor | None = None
    model: torch.nn.Module | None = None
    results: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)
    # `x0`: whether the unconditional pass follows (guidance on), whether it is the one running,
    # and each layer's logit lens `[C, F, H, W]` in the conditional and unconditional passes.
    guided: bool = False
    unconditional: bool = False
    lens: dict[tuple[int, bool], torch.Tensor] = field(default_factory=dict)


class TransformerCapture:
    """Installs capture hooks on one or more transformers (Wan2.2 A14B has two experts) and
    collects, per armed forward pass, `{(layer, kind): tensor}` on the CPU.

    Use as a context manager; `arm()` before the pass to capture, `take()` afterwards. Each
    transformer call disarms the capture when it returns, so the next (unconditional) pass of
    the same step is never captured.
    """

    def __init__(self, transformers: Sequence[torch.nn.Module], request: CaptureRequest):
        self.transformers = list(transformers)
        self.request = request
        self._state = _PassState()
        self._handles: list[Any] = []
        self._processors: list[tuple[Any, Any]] = []

    def __enter__(self) -> TransformerCapture:
        kinds = set(self.request.kinds)
        block_kinds = [kind for kind in self.request.kinds if kind not in ATTENTION_KINDS]
        for model in self.transformers:
            self._handles.append(model.register_forward_pre_hook(self._before_forward, with_kwargs=True))
            self._handles.append(model.register_forward_hook(self._after_forward))
            if "decoded" in kinds or "x0" in kinds:
                self._handles.append(model.condition_embedder.register_forward_hook(self._keep_temb))
            for layer in self.request.layers:
                block = model.blocks[layer]
                if block_kinds:
                    self._handles.append(block.register_forward_hook(self._block_hook(layer, block_kinds)))
                for kind, attn in (("self_attn", block.attn1), ("cross_attn", block.attn2)):
                    if kind in kinds:
                        self._processors.append((attn, attn.processor))
                        on_probs = self._store(layer, kind)
                        attn.set_processor(_ProbsProcessor(attn.processor, on_probs, self._armed, self.request.query_tokens))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        for attn, processor in reversed(self._processors):
            attn.set_processor(processor)
        self._handles.clear()
        self._processors.clear()

    def arm(self, guided: bool = False) -> None:
        """Captures the next transformer call (and, for `x0` with `guided`, the logit lens of the
        unconditional call after it)."""
        self._state = _PassState(armed=True, guided=guided)

    def take(
        self,
        x_t: torch.Tensor | None = None,
        sigma: torch.Tensor | float | None = None,
        guidance: float = 1.0,
        impose: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[tuple[int, str], torch.Tensor]:
        """What the last armed pass captured, `{(layer, kind): tensor}`; checks it is complete.

        `x0` needs the step's `x_t` `[1, C, F, H, W]`, its `sigma`, the `guidance` scale the
        sampler combined the passes with, and `impose` (which puts the condition frames back)."""
        if "x0" in self.request.kinds:
            self._combine_x0(x_t, sigma, guidance, impose)
        results = self._state.results
        missing = [
            (layer, kind) for layer in self.request.layers for kind in self.request.kinds if (layer, kind) not in results
        ]
        if missing:
            layer, kind = missing[0]
            raise RuntimeError(
                f"the captured forward pass produced no `{kind}` at layer {layer}: was the transformer called "
                "between two scheduler steps?"
            )
        self._state = _PassState()
        return results

    @property
    def pass_model(self) -> torch.nn.Module | None:
        """The transformer the armed pass ran on (Wan2.2 A14B has two experts)."""
        return self._state.model

    def _combine_x0(
        self,
        x_t: torch.Tensor | None,
        sigma: torch.Tensor | float | None,
        guidance: float,
        impose: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        state = self._state
        if x_t is None or sigma is None:
            raise RuntimeError("the `x0` capture needs the step's x_t and sigma")
        for layer in self.request.layers:
            conditional = state.lens.get((layer, False))
            if conditional is None:
                continue  # `take` names the missing capture
            velocity = conditional
            if state.guided:
                unconditional = state.lens.get((layer, True))
                if unconditional is None:
                    raise RuntimeError(
                        f"guidance is on but no unconditional pass was seen for the `x0` capture at layer {layer}"
                    )
                velocity = unconditional + guidance * (conditional - unconditional)
            sample = x_t.float().to(velocity.device)
            x0 = sample - torch.as_tensor(sigma, dtype=torch.float32, device=velocity.device) * velocity.unsqueeze(0)
            if impose is not None:
                x0 = impose(x0)
            state.results[(layer, "x0")] = x0[0].detach().float().cpu()

    def _armed(self) -> bool:
        return self._state.armed and not self._state.unconditional and self._state.grid is not None

    def _lens_armed(self) -> bool:
        return self._state.armed and self._state.grid is not None

    def _before_forward(self, model: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if not self._state.armed:
            return
        latents = kwargs.get("hidden_states", args[0] if args else None)
        if latents is None or latents.dim() != 5 or latents.shape[0] != 1:
            shape = None if latents is None else list(latents.shape)
            raise ValueError(f"captures need one sample per transformer call ([1, C, F, H, W]); got {shape}")
        p_t, p_h, p_w = model.config.patch_size
        _, _, frames, height, width = latents.shape
        self._state.grid = (frames // p_t, height // p_h, width // p_w)
        self._state.model = model

    def _after_forward(self, model: torch.nn.Module, args: tuple, output: Any) -> None:
        state = self._state
        if not (state.armed and state.model is model):
            return
        if state.guided and not state.unconditional and "x0" in self.request.kinds:
            # The unconditional pass of the same step follows: its logit lens too.
            state.unconditional = True
        else:
            state.armed = False

    def _keep_temb(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if self._lens_armed():
            self._state.temb = output[0]

    def _store(self, layer: int, kind: str) -> Callable[[torch.Tensor], None]:
        def store(tensor: torch.Tensor) -> None:
            self._state.results[(layer, kind)] = tensor.detach().float().cpu()

        return store

    def _block_hook(self, layer: int, kinds: Sequence[str]) -> Callable[..., None]:
        def hook(block: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if not self._lens_armed():
                return
            state = self._state
            grid = state.grid
            assert grid is not None
            with torch.no_grad():
                if "x0" in kinds:
                    if state.temb is None or state.model is None:
                        raise RuntimeError("the logit lens needs the time embedding, which was not seen")
                    state.lens[(layer, state.unconditional)] = logit_lens(state.model, output, state.temb, grid)
                if state.unconditional:
                    return
                for kind in kinds:
                    if kind == "x0":
                        continue
                    if kind == "decoded":
                        if state.temb is None or state.model is None:
                            raise RuntimeError("the logit lens needs the time embedding, which was not seen")
                        tensor = logit_lens(state.model, output, state.temb, grid)
                    elif kind == "token_norm":
                        tensor = reduce.token_norms(output, grid)
                    elif kind == "pca3":
                        tensor = reduce.pca3(output, grid)
                    else:
                        tensor = reduce.channels_first(output, grid)
                    self._store(layer, kind)(tensor)

        return hook
