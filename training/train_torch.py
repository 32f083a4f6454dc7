#!/usr/bin/env python3
"""Train the built-in model with PyTorch + diffusers, the same recipe as `stepscope train`.

`stepscope train` (Rust/candle) is the reference trainer; on this project's CPU it runs 2.3-4x
slower than PyTorch, so the shipped model is trained here. Both write the same files:
`model/` (diffusers `WanTransformer3DModel` folder: `config.json`,
`diffusion_pytorch_model.safetensors`, the EMA weights) and `model/prompts.safetensors` (one
learned `[1, L, text_dim]` prompt embedding per task name), which the engine loads.

The data are the Rust generators' own instances: this script calls `stepscope generate` for
chunks of fresh training seeds (top bit set; held-out evaluation seeds are `0..N`), so there is
one definition of every task. The recipe (see training/README.md):

- flow matching, `x_t = (1 - sigma) x0 + sigma eps`, target `v = eps - x0`, `sigma` logit-normal;
- Wan2.2 TI2V conditioning as the engine samples: frame 0 stays clean with timestep 0 on its
  tokens and carries no loss;
- AdamW (0.9, 0.999, 1e-8), linear warm-up, weight decay on weight matrices, gradient norm
  clipped to 1, an EMA of the weights (exported).

Checkpoints (`checkpoint.pt`: weights, EMA, AdamW moments, random states, data cursors, step)
are written atomically every `--checkpoint-minutes`, at the end, and on Ctrl+C or SIGTERM (after
the step in progress); `--resume` continues a run.

Usage (from the repository root, after `cargo build --release`):

    /path/to/venv/bin/python training/train_torch.py --out training/runs/maze \
        --tasks maze --maze-sizes 4-6 --steps 20000 --threads 2
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from safetensors import safe_open
from safetensors.torch import save_file

TRAINING_SEED_BIT = 1 << 63
CHUNK = 2048
TASK_SIZES = {"maze": None, "symmetry": 6, "gravity": 6, "flood_fill": 6, "rotation": 6}


def model_config(args) -> dict:
    """The pixel-space Wan of the recipe: 3 channels, 1x2x2 patches (one token per cell)."""
    return {
        "patch_size": [1, 2, 2],
        "num_attention_heads": args.heads,
        "attention_head_dim": 32,
        "in_channels": 3,
        "out_channels": 3,
        "text_dim": args.text_dim,
        "freq_dim": 256,
        "ffn_dim": args.ffn_dim,
        "num_layers": args.layers,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "image_dim": None,
        "added_kv_proj_dim": None,
        "rope_max_seq_len": 1024,
        "pos_embed_seq_len": None,
    }


def atomic_write(path: Path, write) -> None:
    """Writes `path` through a temporary file in its folder, synced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class InstanceStream:
    """Fresh ground-truth videos `[3, F, H, W]` of one task and size, from `stepscope generate`.

    Chunks of `chunk` consecutive training seeds are generated `prefetch` chunks ahead on
    `pool`'s threads (each a `stepscope generate` process), so a fast accelerator is not kept
    waiting. `cursor` is where a resumed stream starts: just past the chunk being read.
    """

    def __init__(self, binary: str, task: str, size: int, frames: int, base_seed: int, cursor: int = 0,
                 chunk: int = 2048, pool=None, prefetch: int = 0, unsplit: int = 0):
        self.binary, self.task, self.size, self.frames = binary, task, size, frames
        self.base_seed, self.cursor, self.chunk = base_seed, cursor, chunk
        # Seeds below `unsplit` were read before the held-out split existed (each seed's own
        # puzzle); from it on, each seed draws a training puzzle (`generate --split train`).
        self.unsplit = unsplit
        self.pool, self.prefetch = pool, prefetch
        self.scheduled = cursor
        self.pending = []
        self.videos: torch.Tensor | None = None
        self.offset = 0

    def take(self, count: int) -> torch.Tensor:
        parts, needed = [], count
        while needed > 0:
            if self.videos is None or self.offset == len(self.videos):
                self._next_chunk()
            part = self.videos[self.offset : self.offset + needed]
            self.offset += len(part)
            needed -= len(part)
            parts.append(part)
        return torch.cat(parts)

    def _schedule(self) -> None:
        start = self.scheduled
        self.scheduled += self.chunk
        if self.pool is None:
            self.pending.append(start)
        else:
            self.pending.append(self.pool.submit(self._generate, start))

    def _next_chunk(self) -> None:
        while len(self.pending) < 1 + self.prefetch:
            self._schedule()
        head = self.pending.pop(0)
        self.videos = self._generate(head) if self.pool is None else head.result()
        self.cursor += self.chunk
        self.offset = 0
        while len(self.pending) < self.prefetch:
            self._schedule()

    def _generate(self, start: int) -> torch.Tensor:
        first_seed = (self.base_seed + start) % (1 << 64) | TRAINING_SEED_BIT
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "chunk.safetensors"
            subprocess.run(
                [self.binary, "generate", "--task", self.task, "--size", str(self.size),
                 "--frames", str(self.frames), "--first-seed", str(first_seed),
                 "--count", str(self.chunk), "--split", "none" if start < self.unsplit else "train",
                 "--output", str(out)],
                check=True,
            )
            with safe_open(out, "pt") as f:
                return f.get_tensor("videos")


def noise_batch(x0: torch.Tensor, gen: torch.Generator):
    """x_t, per-token timesteps `[B, N]` (0 on frame 0), target `eps - x0`, sigmas."""
    b, _, f, h, w = x0.shape
    dev = x0.device
    eps = torch.randn(x0.shape, generator=gen, device=dev)
    sigma = torch.sigmoid(torch.randn(b, generator=gen, device=dev))
    generated = torch.ones(1, 1, f, 1, 1, device=dev)
    generated[:, :, 0] = 0.0
    target = eps - x0
    x_t = x0 + sigma.view(b, 1, 1, 1, 1) * target * generated
    per_frame = (h // 2) * (w // 2)
    timesteps = torch.cat(
        [torch.zeros(b, per_frame, device=dev), (1000.0 * sigma).view(b, 1).expand(b, (f - 1) * per_frame)], dim=1
    )
    return x_t, timesteps, target, generated


def training_stream(streams) -> dict:
    """`training_stream.json`: the seeds each stream has read, unsplit and split (engine/src/training/stream.rs)."""
    ranges = []
    for st in streams:
        first = (st.base_seed % (1 << 64)) | TRAINING_SEED_BIT
        for lo, hi, split in [(0, min(st.unsplit, st.cursor), "none"), (st.unsplit, st.cursor, "train")]:
            if hi > lo:
                ranges.append({"task": st.task, "size": st.size, "frames": st.frames,
                               "first_seed": (first + lo) % (1 << 64), "count": hi - lo, "split": split})
    return {"streams": ranges, "note": "written by training/train_torch.py from its data streams' cursors"}


def export(out: Path, ema_model, ema_prompts: dict[str, torch.Tensor], streams=()) -> None:
    model_dir = out / "model"
    config = dict(ema_model.config)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config = {"_class_name": "WanTransformer3DModel", "_diffusers_version": __import__("diffusers").__version__,
              **config}
    atomic_write(model_dir / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2, sort_keys=True)))
    weights = {k: v.detach().cpu().contiguous() for k, v in ema_model.state_dict().items()}
    atomic_write(model_dir / "diffusion_pytorch_model.safetensors", lambda p: save_file(weights, p))
    prompts = {k: v.detach().cpu().contiguous() for k, v in ema_prompts.items()}
    atomic_write(model_dir / "prompts.safetensors", lambda p: save_file(prompts, p))
    stream = json.dumps(training_stream(streams), indent=1)
    atomic_write(model_dir / "training_stream.json", lambda p: Path(p).write_text(stream + "\n"))


def mix_weights_for(mixes: list[tuple[str, int]], spec: str | None) -> list[float] | None:
    """Per-mix draw weights from `task=weight,...`: a task's sizes share its weight equally."""
    if not spec:
        return None
    weights = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        weights[name] = float(value)
    unknown = set(weights) - {t for t, _ in mixes}
    if unknown:
        raise SystemExit(f"error: --task-weights names tasks not in the run: {sorted(unknown)}")
    sizes = {t: sum(1 for u, _ in mixes if u == t) for t, _ in mixes}
    return [weights.get(t, 1.0) / sizes[t] for t, _ in mixes]


def learning_rate(args, step: int, minutes: float) -> float:
    """Linear warm-up to `--lr`, constant, then a cosine down to `--min-lr`: over the last
    `--anneal-steps` steps, or over the last `--anneal-minutes` of `--max-minutes`."""
    lr = args.lr * min(1.0, (step - args.warmup_from + 1) / args.warmup)
    if args.anneal_minutes > 0:
        done = (minutes - (args.max_minutes - args.anneal_minutes)) / args.anneal_minutes
    elif args.anneal_steps > 0:
        done = (step - (args.steps - args.anneal_steps)) / args.anneal_steps
    else:
        return lr
    if done >= 0:
        lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * min(1.0, done)))
    return lr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--stepscope", default="target/release/stepscope", help="the stepscope binary")
    ap.add_argument("--tasks", default="maze")
    ap.add_argument("--add-tasks", default="", help="with --resume: tasks to add to the run (new prompts)")
    ap.add_argument("--maze-sizes", default="4-6")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=None, help="default 32; may change on --resume")
    ap.add_argument("--lr", type=float, default=None, help="default 1e-3; may change on --resume")
    ap.add_argument("--warmup", type=int, default=None,
                    help="warm-up steps (default 200); on --resume, a new warm-up from the step resumed")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=None, help="EMA decay (default 0.999; may change on --resume)")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn-dim", type=int, default=512)
    ap.add_argument("--text-dim", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-minutes", type=float, default=10.0)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop after this long (0: never)")
    ap.add_argument("--task-weights", default=None,
                    help="how often each task is drawn, e.g. maze=3,gravity=1 (default: every task 1; a "
                         "task's sizes share its weight; may change on --resume)")
    ap.add_argument("--anneal-steps", type=int, default=0,
                    help="the last N steps before --steps decay the learning rate (cosine) to --min-lr")
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--anneal-minutes", type=float, default=0.0,
                    help="with --max-minutes: the cosine runs over the last M minutes of the wall budget")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward pass (cuda)")
    ap.add_argument("--chunk", type=int, default=2048, help="instances per `stepscope generate` call")
    ap.add_argument("--prefetch", type=int, default=0,
                    help="chunks generated ahead per data stream, on --workers threads (0: on demand)")
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    if args.anneal_minutes > 0 and not args.max_minutes:
        raise SystemExit("error: --anneal-minutes needs --max-minutes")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    out: Path = args.out
    ckpt_path = out / "checkpoint.pt"

    if args.resume:
        state = torch.load(ckpt_path, weights_only=False, map_location="cpu")
        saved_args = state["args"]
        ema, weights = args.ema, args.task_weights
        overrides = {k: getattr(args, k) for k in ("batch_size", "lr", "warmup")}
        for key in ("tasks", "maze_sizes", "frames", "batch_size", "lr", "warmup", "weight_decay", "ema",
                    "layers", "heads", "ffn_dim", "text_dim", "prompt_tokens", "seed"):
            setattr(args, key, saved_args[key])
        for key, value in overrides.items():
            if value is not None:
                setattr(args, key, value)
        # A new warm-up counts from the step resumed.
        warmup_from = state["step"] if overrides["warmup"] is not None else 0
        if ema is not None:
            args.ema = ema
        args.task_weights = weights if weights is not None else saved_args.get("task_weights")
        added = [t for t in args.add_tasks.split(",") if t and t not in args.tasks.split(",")]
        if added:
            args.tasks = ",".join(args.tasks.split(",") + added)
    else:
        args.ema = 0.999 if args.ema is None else args.ema
        args.batch_size = 32 if args.batch_size is None else args.batch_size
        args.lr = 1e-3 if args.lr is None else args.lr
        args.warmup = 200 if args.warmup is None else args.warmup
        warmup_from = 0
        if ckpt_path.exists():
            print(f"error: {ckpt_path} exists; pass --resume to continue it", file=sys.stderr)
            return 2
        state = None
    args.warmup_from = warmup_from

    tasks = args.tasks.split(",")
    lo, hi = (int(v) for v in args.maze_sizes.split("-"))
    mixes = [(t, s) for t in tasks for s in (range(lo, hi + 1) if t == "maze" else [TASK_SIZES[t]])]
    mix_weights = mix_weights_for(mixes, args.task_weights)
    torch.manual_seed(args.seed)
    model = WanTransformer3DModel(**model_config(args))
    prompts = torch.nn.ParameterDict(
        {t: torch.nn.Parameter(torch.randn(1, args.prompt_tokens, args.text_dim)) for t in tasks}
    )
    # Optimiser groups: weight matrices (decayed), then the other model parameters with the
    # prompts of the run's first tasks, then one group per set of tasks added on a resume.
    prompt_groups = [tasks] if state is None else state.get("prompt_groups", [list(state["prompts"].keys())])
    added = [t for t in tasks if all(t not in group for group in prompt_groups)]
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay + [prompts[t] for t in prompt_groups[0]], "weight_decay": 0.0}]
    groups += [{"params": [prompts[t] for t in group], "weight_decay": 0.0} for group in prompt_groups[1:]]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    ema_model = copy.deepcopy(model).requires_grad_(False)
    ema_prompts = {t: p.detach().clone() for t, p in prompts.items()}
    picker = random.Random(args.seed)
    # Noise is drawn where the model runs; a CPU run and an accelerator run keep separate states.
    gen = torch.Generator(device=device).manual_seed(args.seed)
    gen_key = "gen" if device.type == "cpu" else f"gen_{device.type}"
    other_gens = {}
    step, samples, elapsed = 0, 0, 0.0
    cursors, unsplit = {}, {}
    if state is not None:
        model.load_state_dict(state["model"])
        prompts.load_state_dict(state["prompts"], strict=False)
        opt.load_state_dict(state["opt"])
        ema_model.load_state_dict(state["ema_model"])
        ema_prompts = state["ema_prompts"] | {t: prompts[t].detach().clone() for t in added}
        if added:
            opt.add_param_group({"params": [prompts[t] for t in added], "weight_decay": 0.0})
            prompt_groups = prompt_groups + [added]
        picker.setstate(state["picker"])
        other_gens = {k: v for k, v in state.items() if k.startswith("gen")}
        if gen_key in state:
            gen.set_state(state[gen_key])
        else:
            gen.manual_seed(args.seed + state["step"])
        step, samples, elapsed, cursors = state["step"], state["samples"], state["elapsed"], state["cursors"]
        # A checkpoint from before the split read every seed so far unsplit.
        unsplit = state.get("unsplit_cursors", cursors)
    model.to(device)
    ema_model.to(device)
    prompts.to(device)
    ema_prompts = {t: p.to(device) for t, p in ema_prompts.items()}
    # AdamW's moments follow their parameters (load_state_dict put them on the CPU).
    for moments in opt.state.values():
        for key, value in moments.items():
            if torch.is_tensor(value) and key != "step":
                moments[key] = value.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters; mixes {mixes}; starting at step {step}", flush=True)

    pool = None
    if args.prefetch > 0:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(max_workers=args.workers)
    streams = {}
    for i, (t, s) in enumerate(mixes):
        # Each (task, size) stream has its own block of seeds; added tasks come last, so the
        # blocks of a run's first mixes stay where they were.
        base = (args.seed << 40) + (i << 32)
        # A resumed stream starts at its next unread chunk (the partly read one is skipped).
        streams[(t, s)] = InstanceStream(args.stepscope, t, s, args.frames, base, cursors.get(f"{t}/{s}", 0),
                                         chunk=args.chunk, pool=pool, prefetch=args.prefetch,
                                         unsplit=unsplit.get(f"{t}/{s}", 0))

    log_path = out / "loss.csv"
    out.mkdir(parents=True, exist_ok=True)
    if state is not None and log_path.exists():
        rows = [r for r in csv.reader(log_path.open()) if r and (r[0] == "step" or int(r[0]) < step)]
        atomic_write(log_path, lambda p: csv.writer(open(p, "w", newline="")).writerows(rows))
    elif not log_path.exists():
        log_path.write_text("step,samples,task,size,loss,grad_norm,lr,elapsed_s\n")
    log = log_path.open("a")

    def checkpoint() -> None:
        state = {
            "args": vars(args) | {"out": str(out)}, "model": model.state_dict(), "prompts": prompts.state_dict(),
            "opt": opt.state_dict(), "ema_model": ema_model.state_dict(), "ema_prompts": ema_prompts,
            "picker": picker.getstate(), **other_gens, gen_key: gen.get_state(), "step": step, "samples": samples,
            "elapsed": elapsed, "prompt_groups": prompt_groups, "cursors": {f"{t}/{s}": st.cursor for (t, s), st in streams.items()},
            "unsplit_cursors": {f"{t}/{s}": st.unsplit for (t, s), st in streams.items()},
        }
        log.flush()
        atomic_write(ckpt_path, lambda p: torch.save(state, p))
        export(out, ema_model, ema_prompts, streams.values())

    forward = torch.compile(model, dynamic=False) if args.compile else model
    # Ctrl+C or SIGTERM: finish the step in progress, checkpoint, and stop.
    stop = {"asked": False}

    def ask_stop(signum, _frame):
        print(f"signal {signum}: checkpointing after this step", flush=True)
        stop["asked"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    model_params = list(model.parameters()) + list(prompts.parameters())
    ema_params = list(ema_model.parameters())
    last_ckpt = time.monotonic()
    started, first_step = time.monotonic(), step
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    # Per-step rows wait here with their loss and gradient norm still on the device, so the
    # accelerator is synchronised once per flush rather than once per step.
    pending_rows = []

    def flush_log() -> None:
        if not pending_rows:
            return
        values = torch.stack([torch.stack([r[4], r[5]]) for r in pending_rows]).tolist()
        for row, (loss_value, norm_value) in zip(pending_rows, values):
            log.write(f"{row[0]},{row[1]},{row[2]},{row[3]},{loss_value:.6f},{norm_value:.4f},{row[6]:.3e},{row[7]:.1f}\n")
        pending_rows.clear()
        log.flush()

    while step < args.steps:
        t0 = time.monotonic()
        if mix_weights is None:
            task, size = mixes[picker.randrange(len(mixes))]
        else:
            task, size = picker.choices(mixes, weights=mix_weights)[0]
        x0 = streams[(task, size)].take(args.batch_size).to(device, non_blocking=True)
        x_t, timesteps, target, generated = noise_batch(x0, gen)
        lr = learning_rate(args, step, (time.monotonic() - started) / 60.0)
        for group in opt.param_groups:
            group["lr"] = lr
        context = prompts[task].expand(args.batch_size, -1, -1)
        with autocast:
            velocity = forward(hidden_states=x_t, timestep=timesteps, encoder_hidden_states=context,
                               return_dict=False)[0]
        loss = ((velocity.float() - target) ** 2 * generated).sum() / (target.numel() * (args.frames - 1) / args.frames)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model_params, 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, list(model.parameters()), 1.0 - args.ema)
            for t, p in prompts.items():
                ema_prompts[t].lerp_(p.detach(), 1.0 - args.ema)
        step += 1
        samples += args.batch_size
        elapsed += time.monotonic() - t0
        pending_rows.append((step - 1, samples, task, size, loss.detach(), grad_norm.detach(), lr, elapsed))
        if step % 25 == 0:
            last_loss = pending_rows[-1][4].item()
            flush_log()
            print(f"step {step} loss {last_loss:.4f} {(time.monotonic() - started) / (step - first_step):.3f} s/step lr {lr:.2e}", flush=True)
        if time.monotonic() - last_ckpt > 60 * args.checkpoint_minutes:
            flush_log()
            checkpoint()
            last_ckpt = time.monotonic()
        if stop["asked"] or (args.max_minutes and time.monotonic() - started > 60 * args.max_minutes):
            break
    flush_log()
    checkpoint()
    return 0


if __name__ == "__main__":
    sys.exit(main())
