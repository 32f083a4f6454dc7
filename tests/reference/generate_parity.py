#!/usr/bin/env python3
"""Parity fixtures for Stepscope's Rust (candle) port of diffusers' Wan video transformer.

What it writes (all under tests/fixtures/parity/, float32, about 1.2 MB in all; reruns are
byte-identical):

  t2v_hd20/config.json, t2v_hd20/diffusion_pytorch_model.safetensors
      A tiny random WanTransformer3DModel (diffusers `save_pretrained` layout): patch (1,2,2),
      2 heads x 20 (head dim NOT a multiple of 6), D=40, in/out 4 channels, text_dim 16,
      freq_dim 32, ffn 64, 2 layers, qk_norm rms_norm_across_heads, cross_attn_norm True.
  t2v_hd20/case.safetensors
      One forward pass with a scalar timestep per batch element (shape [1], 731.0), latent
      [1,4,3,8,8] -> patch grid 3x4x4 = 48 tokens.
  t2v_hd20/case_rect.safetensors
      Same model, NON-square latent [1,4,2,6,10] -> grid 2x3x5 = 30 tokens, timestep 58.0, so a
      swapped row/column in RoPE or unpatchify cannot hide behind a square grid.
  ti2v_hd24/config.json, ti2v_hd24/diffusion_pytorch_model.safetensors
      Same family, 2 heads x 24 (D=48), in/out 3 channels, ffn 96, 3 layers.
  ti2v_hd24/case.safetensors
      One forward pass with PER-TOKEN timesteps [1, seq_len] as Wan2.2 TI2V (expand_timesteps)
      passes them: the first latent frame's tokens at 0, every other token at 412.
  sample_t2v_unipc.safetensors
      A 6-step text-to-video sampling run of t2v_hd20 (latent [1,4,3,8,8]) with Wan's default
      UniPCMultistepScheduler and classifier-free guidance 4.0, step by step.
  sample_ti2v_euler.safetensors
      A 5-step TI2V run of ti2v_hd24 (latent [1,3,3,8,8]) with FlowMatchEulerDiscreteScheduler
      (shift 5.0), no guidance, clean condition frame in latent frame 0 (expand_timesteps).

Tensor names inside the case files (seq = F' * H' * W' tokens in (frame, row, column) order,
D = heads * head_dim, hd = head_dim):
  hidden_states [1,C,F,H,W], timestep ([1] or [1,seq]), encoder_hidden_states [1,L,text_dim],
  output [1,C,F,H,W],
  patch_tokens [1,seq,D]           patch_embedding(x).flatten(2).transpose(1,2)
  rope_cos, rope_sin [1,seq,1,hd]  what model.rope(x) returns: per token, the head dim is split
                                   [t | h | w] with h = w = 2*(hd//6), t = hd - 2h; each frequency
                                   appears twice in a row (interleaved pairs: cos0,cos0,cos1,cos1..)
  temb                             condition_embedder's temb: [1,D] (scalar t) or [1,seq,D] (per token)
  timestep_proj                    condition_embedder's timestep_proj BEFORE the model's unflatten:
                                   [1,6D] (scalar t) or [1,seq,6D] (per token); the model then
                                   unflattens it to [1,6,D] / [1,seq,6,D], chunk order
                                   (shift, scale, gate, c_shift, c_scale, c_gate)
  text_tokens [1,L,D]              condition_embedder's text embedder output
  block{i}_out [1,seq,D]           output of transformer block i
  block{i}_self_attn_probs [1,heads,seq,seq]   softmax(q k^T / sqrt(hd)), q,k after RMSNorm + RoPE
  block{i}_cross_attn_probs [1,heads,seq,L]    same for the cross-attention (no RoPE)
  block0_self_attn_q_rope, block0_self_attn_k_rope [1,heads,seq,hd]  block 0's self-attn q/k after
                                   RMSNorm + RoPE (already transposed to heads-first)
  norm_out_modulated [1,seq,D]     norm_out(x) * (1 + scale) + shift, the input of proj_out
  proj_out [1,seq,C*pt*ph*pw]      proj_out output, before unpatchify

Sample files: see write_t2v_unipc_sample / write_ti2v_euler_sample (names k{k}/..., final/...);
their safetensors metadata holds JSON strings "scheduler_config" (the scheduler's full config) and
"run" (steps, guidance, sigmas, timesteps, conventions).

Rerun (from the repository root; takes well under a minute on 2 CPU cores):
    /work/venv/bin/python tests/reference/generate_parity.py
Benchmark (writes a ~2 M-parameter pixel-space model and its inputs to --bench-dir, NOT committed,
and prints median/p90 forward time in ms):
    /work/venv/bin/python tests/reference/generate_parity.py --bench [--bench-dir /tmp/stepscope-bench]
Versions used to produce the committed files are printed at start and stored in each case/sample
file's metadata ("versions").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import diffusers
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "parity"

VERSIONS = {
    "torch": torch.__version__,
    "diffusers": diffusers.__version__,
    "numpy": np.__version__,
}

T2V_CONFIG = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=20,
    in_channels=4,
    out_channels=4,
    text_dim=16,
    freq_dim=32,
    ffn_dim=64,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
)

TI2V_CONFIG = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=24,
    in_channels=3,
    out_channels=3,
    text_dim=16,
    freq_dim=32,
    ffn_dim=96,
    num_layers=3,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
)

BENCH_CONFIG = dict(
    patch_size=(1, 4, 4),
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=3,
    out_channels=3,
    text_dim=32,
    freq_dim=64,
    ffn_dim=512,
    num_layers=6,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
)


# --------------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------------


def reinit_all_parameters(model: torch.nn.Module, seed: int) -> None:
    """Overwrite EVERY parameter with small random values, none at an identity value.

    - matrices / conv kernels: normal(0, 1/sqrt(fan_in)) (0.125..0.25 for these sizes)
    - norm weights (1-D, name contains "norm"): 1 + normal(0, 0.1)
    - biases (and norm biases): normal(0, 0.1)
    - scale_shift_table (blocks and output): normal(0, 0.2)
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            shape = param.shape
            if "scale_shift_table" in name:
                new = torch.randn(shape, generator=gen) * 0.2
            elif param.ndim >= 2:
                fan_in = math.prod(shape[1:])
                new = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
            elif name.endswith(".weight") and "norm" in name:
                new = 1.0 + 0.1 * torch.randn(shape, generator=gen)
            elif name.endswith(".bias"):
                new = 0.1 * torch.randn(shape, generator=gen)
            else:
                raise RuntimeError(f"unhandled parameter {name} {tuple(shape)}")
            param.copy_(new.to(param.dtype))


def build_and_save_model(config: dict, seed: int, out_dir: Path) -> WanTransformer3DModel:
    """Build a random model, save it in diffusers layout, and return the RELOADED copy.

    Everything downstream uses the reloaded copy, so the fixtures are computed from exactly the
    weights on disk.
    """
    torch.manual_seed(seed)
    model = WanTransformer3DModel(**config)
    reinit_all_parameters(model, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    reloaded = WanTransformer3DModel.from_pretrained(out_dir, torch_dtype=torch.float32)
    reloaded.eval()
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), f"reload mismatch at {n1}"
    return reloaded


# --------------------------------------------------------------------------------------------
# Explicit attention processor (records probabilities)
# --------------------------------------------------------------------------------------------


def apply_rope_explicit(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of x [B,S,H,hd] by the angles of cos/sin [1,S,1,hd]."""
    x_even = x[..., 0::2]
    x_odd = x[..., 1::2]
    c = cos[..., 0::2]  # each frequency is stored twice; take one copy
    s = sin[..., 0::2]
    out_even = x_even * c - x_odd * s
    out_odd = x_even * s + x_odd * c
    return torch.stack([out_even, out_odd], dim=-1).flatten(-2)


class ExplicitWanAttnProcessor:
    """Same maths as diffusers' WanAttnProcessor (no image branch), with an explicit softmax.

    Records the attention probabilities [B, heads, S_q, S_kv] in `store[f"{prefix}_probs"]`.
    """

    def __init__(self, store: dict, prefix: str, record_qk: bool = False):
        self.store = store
        self.prefix = prefix
        self.record_qk = record_qk

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        assert attn.add_k_proj is None, "image cross-attention (Wan2.1 I2V) not covered"
        assert attention_mask is None
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        q = attn.to_q(hidden_states)
        k = attn.to_k(context)
        v = attn.to_v(context)
        # RMSNorm over the whole inner dimension (all heads together), before the head split.
        q = attn.norm_q(q)
        k = attn.norm_k(k)
        q = q.unflatten(2, (attn.heads, -1))  # [B, S, H, hd]
        k = k.unflatten(2, (attn.heads, -1))
        v = v.unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            cos, sin = rotary_emb
            q = apply_rope_explicit(q, cos, sin)
            k = apply_rope_explicit(k, cos, sin)
        q = q.transpose(1, 2)  # [B, H, S, hd]
        k = k.transpose(1, 2)
        v = v.transpose(1, 2)
        head_dim = q.shape[-1]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v)  # [B, H, S, hd]
        out = out.transpose(1, 2).flatten(2, 3)
        self.store[f"{self.prefix}_probs"] = probs.detach().clone()
        if self.record_qk:
            self.store[f"{self.prefix}_q_rope"] = q.detach().clone()
            self.store[f"{self.prefix}_k_rope"] = k.detach().clone()
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        return out


def install_explicit_processors(model: WanTransformer3DModel, store: dict) -> list:
    previous = []
    for i, block in enumerate(model.blocks):
        previous.append((block.attn1.processor, block.attn2.processor))
        block.attn1.set_processor(ExplicitWanAttnProcessor(store, f"block{i}_self_attn", record_qk=(i == 0)))
        block.attn2.set_processor(ExplicitWanAttnProcessor(store, f"block{i}_cross_attn"))
    return previous


def restore_processors(model: WanTransformer3DModel, previous: list) -> None:
    for block, (p1, p2) in zip(model.blocks, previous):
        block.attn1.set_processor(p1)
        block.attn2.set_processor(p2)


# --------------------------------------------------------------------------------------------
# Forward case with intermediates
# --------------------------------------------------------------------------------------------


def run_case(model: WanTransformer3DModel, hidden_states, timestep, encoder_hidden_states) -> dict:
    """Run the model once with the explicit processors and hooks; return every recorded tensor."""
    store: dict[str, torch.Tensor] = {}
    hooks = []

    def patch_hook(_m, _inp, out):
        store["patch_tokens"] = out.flatten(2).transpose(1, 2).contiguous().detach().clone()

    def rope_hook(_m, _inp, out):
        cos, sin = out
        store["rope_cos"] = cos.detach().clone()
        store["rope_sin"] = sin.detach().clone()

    def cond_hook(_m, _inp, out):
        temb, timestep_proj, text_tokens, image_tokens = out
        assert image_tokens is None
        store["temb"] = temb.detach().clone()
        store["timestep_proj"] = timestep_proj.detach().clone()
        store["text_tokens"] = text_tokens.detach().clone()

    def block_hook(idx):
        def hook(_m, _inp, out):
            store[f"block{idx}_out"] = out.detach().clone()

        return hook

    def proj_out_hook(_m, inp, out):
        store["norm_out_modulated"] = inp[0].detach().clone()
        store["proj_out"] = out.detach().clone()

    hooks.append(model.patch_embedding.register_forward_hook(patch_hook))
    hooks.append(model.rope.register_forward_hook(rope_hook))
    hooks.append(model.condition_embedder.register_forward_hook(cond_hook))
    for i, block in enumerate(model.blocks):
        hooks.append(block.register_forward_hook(block_hook(i)))
    hooks.append(model.proj_out.register_forward_hook(proj_out_hook))

    with torch.no_grad():
        stock = model(hidden_states, timestep, encoder_hidden_states, return_dict=False)[0]
        previous = install_explicit_processors(model, store)
        try:
            explicit = model(hidden_states, timestep, encoder_hidden_states, return_dict=False)[0]
        finally:
            restore_processors(model, previous)
    for h in hooks:
        h.remove()

    max_diff = (stock - explicit).abs().max().item()
    print(f"    explicit-softmax processor vs stock SDPA processor: max |diff| = {max_diff:.3e}")
    assert max_diff < 1e-5, "explicit attention processor does not reproduce the stock model"

    # Patchify / unpatchify conventions, checked explicitly (a Rust port does them by reshapes):
    #  in:  a patch is flattened in (C, pt, ph, pw) order, the Conv3d weight [D, C, pt, ph, pw]
    #       becomes a [D, C*pt*ph*pw] matrix; tokens are ordered (frame, row, column).
    #  out: proj_out features are ordered (pt, ph, pw, C) -- channel LAST.
    cfg = model.config
    p_t, p_h, p_w = cfg.patch_size
    b, c, f, h, w = hidden_states.shape
    gf, gh, gw = f // p_t, h // p_h, w // p_w
    patches = hidden_states.reshape(b, c, gf, p_t, gh, p_h, gw, p_w).permute(0, 2, 4, 6, 1, 3, 5, 7)
    patches = patches.reshape(b, gf * gh * gw, c * p_t * p_h * p_w)
    weight = model.patch_embedding.weight.reshape(model.patch_embedding.weight.shape[0], -1)
    manual_tokens = patches @ weight.T + model.patch_embedding.bias
    assert (manual_tokens - store["patch_tokens"]).abs().max().item() < 1e-5
    out_c = cfg.out_channels
    manual_out = store["proj_out"].reshape(b, gf, gh, gw, p_t, p_h, p_w, out_c)
    manual_out = manual_out.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, out_c, f, h, w)
    assert torch.equal(manual_out, explicit), "unpatchify convention mismatch"

    # RoPE tables from first principles (float64, cast to float32), per token (frame, row, col).
    hd = cfg.attention_head_dim
    d_h = d_w = 2 * (hd // 6)
    d_t = hd - d_h - d_w
    grid = torch.stack(
        torch.meshgrid(torch.arange(gf), torch.arange(gh), torch.arange(gw), indexing="ij"), dim=-1
    ).reshape(-1, 3).double()
    angles = []
    for axis, dim in enumerate((d_t, d_h, d_w)):
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        angles.append(grid[:, axis : axis + 1] * inv_freq[None, :])
    angles = torch.cat(angles, dim=1).repeat_interleave(2, dim=1)  # [seq, hd], pairs interleaved
    assert torch.equal(angles.cos().float()[None, :, None, :], store["rope_cos"])
    assert torch.equal(angles.sin().float()[None, :, None, :], store["rope_sin"])

    store["output"] = stock.detach().clone()
    return store


def make_case(
    model: WanTransformer3DModel,
    name: str,
    per_token: bool,
    seed: int,
    fhw: tuple[int, int, int] = (3, 8, 8),
    scalar_t: float = 731.0,
    file_name: str = "case.safetensors",
) -> None:
    cfg = model.config
    gen = torch.Generator().manual_seed(seed)
    c = cfg.in_channels
    frames, height, width = fhw
    hidden_states = torch.randn(1, c, frames, height, width, generator=gen)
    encoder_hidden_states = torch.randn(1, 7, cfg.text_dim, generator=gen)
    p_t, p_h, p_w = cfg.patch_size
    if per_token:
        # Exactly what WanImageToVideoPipeline / WanPipeline build with expand_timesteps=True:
        #   first_frame_mask = ones(1, 1, F, H, W); first_frame_mask[:, :, 0] = 0
        #   temp_ts = (first_frame_mask[0][0][:, ::2, ::2] * t).flatten()
        #   timestep = temp_ts.unsqueeze(0).expand(batch, -1)      -> [batch, seq] float32
        t = torch.tensor(412.0)
        first_frame_mask = torch.ones(1, 1, frames, height, width, dtype=torch.float32)
        first_frame_mask[:, :, 0] = 0
        temp_ts = (first_frame_mask[0][0][:, ::p_h, ::p_w] * t).flatten()
        timestep = temp_ts.unsqueeze(0).expand(1, -1).contiguous()
    else:
        timestep = torch.tensor([scalar_t], dtype=torch.float32)

    print(f"  {name}/{file_name}: latent {tuple(hidden_states.shape)}, timestep shape {tuple(timestep.shape)}")
    store = run_case(model, hidden_states, timestep, encoder_hidden_states)
    tensors = {
        "hidden_states": hidden_states,
        "timestep": timestep,
        "encoder_hidden_states": encoder_hidden_states,
    }
    tensors.update(store)
    seq = (frames // p_t) * (height // p_h) * (width // p_w)
    assert tensors["patch_tokens"].shape == (1, seq, cfg.num_attention_heads * cfg.attention_head_dim)
    meta = {
        "versions": json.dumps(VERSIONS),
        "description": json.dumps(
            {
                "model_dir": name,
                "latent_shape": list(hidden_states.shape),
                "patch_grid": [frames // p_t, height // p_h, width // p_w],
                "seq_len": seq,
                "timestep": "per-token [1, seq]" if per_token else "scalar per batch [1]",
                "rope": "rope_cos/rope_sin [1, seq, 1, head_dim] as returned by model.rope; "
                "head_dim split [t | h | w], h = w = 2*(head_dim//6), t = head_dim - 2h; "
                "each frequency repeated twice (interleaved pairs)",
                "timestep_proj": "as returned by condition_embedder, before unflatten to (6, D)",
                "attn_probs": "softmax(q k^T / sqrt(head_dim)), q/k after RMSNorm(+RoPE for self-attn)",
            }
        ),
    }
    save_tensors(tensors, OUT_DIR / name / file_name, meta)


# --------------------------------------------------------------------------------------------
# Sampling runs
# --------------------------------------------------------------------------------------------


def wan_default_unipc() -> UniPCMultistepScheduler:
    """Wan2.1 T2V's scheduler as diffusers' scripts/convert_wan_to_diffusers.py builds it.

    UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
    num_train_timesteps=1000, flow_shift=3.0); everything else at the class defaults
    (solver_order=2, solver_type="bh2", predict_x0=True, lower_order_final=True,
    final_sigmas_type="zero", timestep_spacing="linspace", disable_corrector=[]).
    """
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=3.0,
    )


def write_t2v_unipc_sample(model: WanTransformer3DModel) -> None:
    """Hand-written copy of WanPipeline.__call__'s loop (output_type="latent").

    Per step k (t = scheduler.timesteps[k], an int64 tensor):
      latent_model_input = latents.to(float32)
      timestep = t.expand(1)                                   (int64, shape [1])
      v_cond = model(latents, timestep, prompt_embeds)
      v_uncond = model(latents, timestep, negative_prompt_embeds)
      v = v_uncond + guidance * (v_cond - v_uncond)
      latents = scheduler.step(v, t, latents)
    """
    num_steps = 6
    guidance = 4.0
    cfg = model.config
    gen = torch.Generator().manual_seed(2001)
    noise = torch.randn(1, cfg.in_channels, 3, 8, 8, generator=gen)
    prompt_embeds = torch.randn(1, 7, cfg.text_dim, generator=gen)
    negative_prompt_embeds = torch.randn(1, 7, cfg.text_dim, generator=gen)

    scheduler = wan_default_unipc()
    scheduler.set_timesteps(num_steps, device="cpu")
    scheduler.set_begin_index(0)
    timesteps = scheduler.timesteps
    sigmas = scheduler.sigmas.clone()

    tensors = {
        "noise": noise,
        "prompt_embeds": prompt_embeds,
        "negative_prompt_embeds": negative_prompt_embeds,
        "sigmas": sigmas,
        "timesteps": timesteps.clone(),
    }
    latents = noise.to(torch.float32)
    with torch.no_grad():
        for k, t in enumerate(timesteps):
            latent_model_input = latents.to(model.dtype)
            timestep = t.expand(latents.shape[0])
            v_cond = model(latent_model_input, timestep, prompt_embeds, return_dict=False)[0]
            v_uncond = model(latent_model_input, timestep, negative_prompt_embeds, return_dict=False)[0]
            v = v_uncond + guidance * (v_cond - v_uncond)
            tensors[f"k{k}/latents"] = latents.clone()
            tensors[f"k{k}/timestep"] = timestep.clone()
            tensors[f"k{k}/velocity_cond"] = v_cond.clone()
            tensors[f"k{k}/velocity_uncond"] = v_uncond.clone()
            tensors[f"k{k}/velocity"] = v.clone()
            tensors[f"k{k}/x0"] = latents - sigmas[k] * v
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
    tensors["final/latents"] = latents.clone()

    # Cross-check against the real WanPipeline (no VAE / text encoder; embeddings given).
    pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, scheduler=wan_default_unipc(), transformer=model)
    pipe.set_progress_bar_config(disable=True)
    pipe_latents = pipe(
        prompt_embeds=prompt_embeds,
        negative_prompt_embeds=negative_prompt_embeds,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=num_steps,
        guidance_scale=guidance,
        latents=noise.clone(),
        output_type="latent",
        return_dict=False,
    )[0]
    diff = (pipe_latents - latents).abs().max().item()
    print(f"  sample_t2v_unipc: hand loop vs WanPipeline final latents max |diff| = {diff:.3e}")
    assert diff < 1e-6

    run = {
        "model_dir": "t2v_hd20",
        "scheduler_class": "UniPCMultistepScheduler",
        "num_inference_steps": num_steps,
        "guidance_scale": guidance,
        "sigmas": sigmas.tolist(),
        "timesteps": timesteps.tolist(),
        "timestep_dtype": "int64 (UniPC truncates sigma*1000 toward zero); the pipeline passes t.expand(batch)",
        "noise_seed_note": "noise/prompt_embeds/negative_prompt_embeds are stored; no RNG needed",
        "per_step": "k{k}/latents is x_t entering step k; k{k}/velocity = uncond + g*(cond-uncond); "
        "k{k}/x0 = latents - sigmas[k]*velocity; final/latents after the last step",
    }
    meta = {
        "scheduler_config": scheduler_config_json(scheduler),
        "run": json.dumps(run),
        "versions": json.dumps(VERSIONS),
    }
    save_tensors(tensors, OUT_DIR / "sample_t2v_unipc.safetensors", meta)


class _StubVaeConfig:
    z_dim = 3


class _StubVae:
    config = _StubVaeConfig()


def write_ti2v_euler_sample(model: WanTransformer3DModel) -> None:
    """Hand-written copy of WanImageToVideoPipeline.__call__ with expand_timesteps=True, no CFG.

    diffusers' order of operations per step k (t = scheduler.timesteps[k], float32):
      latent_model_input = (1 - first_frame_mask) * condition + first_frame_mask * latents
      timestep = (first_frame_mask[0][0][:, ::2, ::2] * t).flatten().unsqueeze(0)  -> [1, seq]
      v = model(latent_model_input, timestep, prompt_embeds)
      latents = scheduler.step(v, t, latents)      # steps the UN-composed latents
    and after the loop: latents = (1 - first_frame_mask) * condition + first_frame_mask * latents.
    So diffusers imposes the condition before every model call rather than after every step (the
    original Wan2.2 code re-imposes after each step); both give the same model inputs and the same
    final latents because the scheduler update is element-wise. This is asserted below.
    """
    num_steps = 5
    shift = 5.0
    cfg = model.config
    frames, height, width = 3, 8, 8
    gen = torch.Generator().manual_seed(3001)
    noise = torch.randn(1, cfg.in_channels, frames, height, width, generator=gen)
    prompt_embeds = torch.randn(1, 7, cfg.text_dim, generator=gen)
    condition = torch.randn(1, cfg.in_channels, 1, height, width, generator=gen)

    first_frame_mask = torch.ones(1, 1, frames, height, width, dtype=torch.float32)
    first_frame_mask[:, :, 0] = 0

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(num_steps, device="cpu")
    timesteps = scheduler.timesteps
    sigmas = scheduler.sigmas.clone()

    tensors = {
        "noise": noise,
        "prompt_embeds": prompt_embeds,
        "condition": condition,
        "first_frame_mask": first_frame_mask,
        "sigmas": sigmas,
        "timesteps": timesteps.clone(),
    }
    latents = noise.to(torch.float32)
    reimposed = ((1 - first_frame_mask) * condition + first_frame_mask * latents).clone()  # original-Wan variant
    with torch.no_grad():
        for k, t in enumerate(timesteps):
            latent_model_input = (1 - first_frame_mask) * condition + first_frame_mask * latents
            latent_model_input = latent_model_input.to(model.dtype)
            temp_ts = (first_frame_mask[0][0][:, ::2, ::2] * t).flatten()
            timestep = temp_ts.unsqueeze(0).expand(latents.shape[0], -1)
            v = model(latent_model_input, timestep, prompt_embeds, return_dict=False)[0]

            assert torch.equal(reimposed, latent_model_input)
            token_sigma = first_frame_mask * sigmas[k]  # 0 on the condition frame
            tensors[f"k{k}/latents"] = latent_model_input.clone()
            tensors[f"k{k}/scheduler_latents"] = latents.clone()
            tensors[f"k{k}/timestep"] = timestep.contiguous().clone()
            tensors[f"k{k}/velocity"] = v.clone()
            tensors[f"k{k}/x0"] = latent_model_input - token_sigma * v
            latents = scheduler.step(v, t, latents, return_dict=False)[0]

            # Original Wan2.2 variant: Euler step on the composed latents, then re-impose frame 0.
            stepped = reimposed + (sigmas[k + 1] - sigmas[k]) * v
            reimposed = (1 - first_frame_mask) * condition + first_frame_mask * stepped
    final = (1 - first_frame_mask) * condition + first_frame_mask * latents
    assert (final - reimposed).abs().max().item() < 1e-6
    tensors["final/latents"] = final.clone()
    tensors["final/scheduler_latents"] = latents.clone()

    # Cross-check against the real WanImageToVideoPipeline (VAE replaced by the stored condition).
    class _Pipe(WanImageToVideoPipeline):
        def prepare_latents(self, image, batch_size, *args, **kwargs):
            return noise.clone(), condition.clone(), first_frame_mask.clone()

    pipe = _Pipe(
        tokenizer=None,
        text_encoder=None,
        vae=None,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
        transformer=model,
        expand_timesteps=True,
    )
    pipe.vae = _StubVae()
    pipe.set_progress_bar_config(disable=True)
    pipe_latents = pipe(
        image=torch.zeros(1, 3, 64, 64),
        prompt_embeds=prompt_embeds,
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=num_steps,
        guidance_scale=1.0,
        output_type="latent",
        return_dict=False,
    )[0]
    diff = (pipe_latents - final).abs().max().item()
    print(f"  sample_ti2v_euler: hand loop vs WanImageToVideoPipeline final latents max |diff| = {diff:.3e}")
    assert diff < 1e-6

    run = {
        "model_dir": "ti2v_hd24",
        "scheduler_class": "FlowMatchEulerDiscreteScheduler",
        "num_inference_steps": num_steps,
        "guidance_scale": 1.0,
        "expand_timesteps": True,
        "sigmas": sigmas.tolist(),
        "timesteps": timesteps.tolist(),
        "timestep_dtype": "float32; per-token timestep [1, seq] = first_frame_mask[0,0,:, ::2, ::2] * t",
        "per_step": "k{k}/latents = model input (condition imposed on latent frame 0); "
        "k{k}/scheduler_latents = diffusers' un-composed scheduler state (frame 0 drifts, never used); "
        "k{k}/x0 = latents - (first_frame_mask * sigmas[k]) * velocity (frame 0 = condition exactly); "
        "final/latents = composed result the pipeline returns",
    }
    meta = {
        "scheduler_config": scheduler_config_json(scheduler),
        "run": json.dumps(run),
        "versions": json.dumps(VERSIONS),
    }
    save_tensors(tensors, OUT_DIR / "sample_ti2v_euler.safetensors", meta)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def scheduler_config_json(scheduler) -> str:
    return json.dumps({k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}, sort_keys=True)


def save_tensors(tensors: dict, path: Path, metadata: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {}
    for name, t in tensors.items():
        assert t.dtype in (torch.float32, torch.int64), f"{name}: {t.dtype}"
        assert torch.isfinite(t.float()).all(), f"{name} has non-finite values"
        clean[name] = t.detach().contiguous().clone()
    write_safetensors_deterministic(clean, path, metadata)
    with safe_open(str(path), framework="pt") as f:  # read back through the reference parser
        assert f.metadata() == metadata
        for name, t in clean.items():
            assert torch.equal(f.get_tensor(name), t), name


def write_safetensors_deterministic(tensors: dict, path: Path, metadata: dict) -> None:
    """Write a safetensors file whose bytes depend only on its content.

    safetensors' own writer serialises the metadata map in hash order, so reruns produce
    byte-different (content-identical) files; this writer sorts tensor names and JSON keys.
    """
    dtype_names = {torch.float32: "F32", torch.int64: "I64"}
    header: dict = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        data = t.contiguous().numpy().tobytes()  # little-endian on every platform we run on
        header[name] = {
            "dtype": dtype_names[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for data in blobs:
            f.write(data)
    os.chmod(path, 0o644)


def summarize(path: Path) -> None:
    print(f"{path.relative_to(REPO_ROOT)}  ({path.stat().st_size / 1024:.1f} KiB)")
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            std = t.float().std().item() if t.numel() > 1 else float("nan")
            print(f"    {name:32s} {str(list(t.shape)):22s} {str(t.dtype):14s} std={std:.3g}")


def run_fixtures() -> None:
    print(f"versions: {VERSIONS}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    print("building t2v_hd20")
    t2v = build_and_save_model(T2V_CONFIG, seed=1001, out_dir=OUT_DIR / "t2v_hd20")
    make_case(t2v, "t2v_hd20", per_token=False, seed=1101)
    # Non-square grid (F'=2, H'=3, W'=5) so that a swapped H/W in RoPE or unpatchify shows up.
    make_case(t2v, "t2v_hd20", per_token=False, seed=1201, fhw=(2, 6, 10), scalar_t=58.0,
              file_name="case_rect.safetensors")

    print("building ti2v_hd24")
    ti2v = build_and_save_model(TI2V_CONFIG, seed=1002, out_dir=OUT_DIR / "ti2v_hd24")
    make_case(ti2v, "ti2v_hd24", per_token=True, seed=1102)

    print("sampling runs")
    write_t2v_unipc_sample(t2v)
    write_ti2v_euler_sample(ti2v)

    for path in OUT_DIR.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)

    print("\nsummary")
    for path in sorted(OUT_DIR.rglob("*.safetensors")):
        if path.name == "diffusion_pytorch_model.safetensors":
            with safe_open(str(path), framework="pt") as f:
                n = len(list(f.keys()))
                numel = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
            print(f"{path.relative_to(REPO_ROOT)}  ({path.stat().st_size / 1024:.1f} KiB): "
                  f"{n} tensors, {numel} parameters")
            continue
        summarize(path)
    total = sum(p.stat().st_size for p in OUT_DIR.rglob("*") if p.is_file())
    print(f"total size of {OUT_DIR.relative_to(REPO_ROOT)}: {total / 1024:.1f} KiB")
    assert total < 2 * 1024 * 1024


def run_bench(bench_dir: Path, warmup: int, runs: int) -> None:
    print(f"versions: {VERSIONS}, threads: {torch.get_num_threads()}")
    model = build_and_save_model(BENCH_CONFIG, seed=4001, out_dir=bench_dir / "model")
    num_params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(4101)
    hidden_states = torch.randn(1, 3, 6, 32, 32, generator=gen)
    timestep = torch.tensor([500.0])
    encoder_hidden_states = torch.randn(1, 8, BENCH_CONFIG["text_dim"], generator=gen)
    with torch.no_grad():
        output = model(hidden_states, timestep, encoder_hidden_states, return_dict=False)[0]
        for _ in range(warmup):
            model(hidden_states, timestep, encoder_hidden_states, return_dict=False)
        times_ms = []
        for _ in range(runs):
            start = time.perf_counter()
            model(hidden_states, timestep, encoder_hidden_states, return_dict=False)
            times_ms.append((time.perf_counter() - start) * 1000.0)
    save_file(
        {
            "hidden_states": hidden_states,
            "timestep": timestep,
            "encoder_hidden_states": encoder_hidden_states,
            "output": output.contiguous(),
        },
        str(bench_dir / "inputs.safetensors"),
        metadata={"versions": json.dumps(VERSIONS), "config": json.dumps(BENCH_CONFIG)},
    )
    times_ms.sort()
    median = statistics.median(times_ms)
    p90 = times_ms[min(len(times_ms) - 1, math.ceil(0.9 * len(times_ms)) - 1)]
    seq = 6 * (32 // 4) * (32 // 4)
    print(f"bench model + inputs written to {bench_dir}")
    print(f"parameters: {num_params} ({num_params / 1e6:.3f} M), tokens: {seq}")
    print(f"forward ({runs} runs after {warmup} warm-up, {torch.get_num_threads()} threads): "
          f"median {median:.2f} ms, p90 {p90:.2f} ms, min {times_ms[0]:.2f} ms, max {times_ms[-1]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", action="store_true", help="time a ~2 M-parameter pixel-space model instead")
    parser.add_argument("--bench-dir", type=Path, default=Path("/tmp/stepscope-bench"))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    if args.bench:
        run_bench(args.bench_dir, args.warmup, args.runs)
    else:
        run_fixtures()


if __name__ == "__main__":
    main()
