"""Running a diffusers Wan pipeline and exporting the run as a Stepscope trajectory file.

`export_run` calls the pipeline once per seed (one video each) with three interceptions that do
not change what the pipeline computes:

- `pipe.prepare_latents` is wrapped to learn the latent shape, to put Stepscope's seeded noise
  in place of the pipeline's own (for integer seeds), and, for Wan2.2-style image-to-video
  (`expand_timesteps`), to keep the clean condition frame and its mask;
- `pipe.scheduler.step(v, t, x_t)` is wrapped to record, exactly as the scheduler receives them,
  the latents `x_t` entering each step and the velocity `v` (after classifier-free guidance),
  and to compute `x0 = x_t - sigma_k * v` with the scheduler's own `sigmas[k]`;
- hooks on the transformer blocks (`capture.py`) take the chosen captures in the conditional
  forward pass of the chosen steps.

The final latents are the pipeline's own output (`output_type="latent"`). Tensors are
`[C, F, H, W]` (one sample) and kept on the CPU in f32 until the file is written. The steps
asked for with `decode_steps` also have their `x0` decoded by the pipeline's VAE (as the pipeline
decodes its output) and stored as `s{s}/k{k}/video` `[3, F_v, H_v, W_v]`, with the manifest's
`video` and `seeds[i].video_steps`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .capture import CaptureRequest, TransformerCapture
from .manifest import FORMAT_VERSION
from .names import capture_name, final_name, step_name, video_name
from .noise import stepscope_noise
from .writer import STORAGE_DTYPES, write_trajectory

CREATED_BY = f"stepscope_export {__version__}"
"""What this package writes in the manifest's `created_by`."""

Seed = int | torch.Tensor | torch.Generator
"""A seed of `export_run`: an integer (Stepscope's seeded noise, recorded as `{"rng_seed": n}`),
a noise tensor `[C, F, H, W]`, or a `torch.Generator` the pipeline draws its noise from (both
recorded as `"given"`)."""

DecodeSteps = Sequence[int] | Mapping[int, Sequence[int]]
"""`export_run`'s `decode_steps`: steps decoded for every seed, or seed index -> that seed's steps
(seeds left out: none)."""

_TORCH_DTYPE_NAMES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64"}


@dataclass
class SeedRecord:
    """What one seed's run produced: per step `latents` (x_t), `velocity`, `x0`, each
    `[C, F, H, W]` f32; `captures[k][(layer, kind)]` at the capture steps; the `final` latents."""

    latents: list[torch.Tensor] = field(default_factory=list)
    velocity: list[torch.Tensor] = field(default_factory=list)
    x0: list[torch.Tensor] = field(default_factory=list)
    captures: dict[int, dict[tuple[int, str], torch.Tensor]] = field(default_factory=dict)
    final: torch.Tensor | None = None


@dataclass
class ExportResult:
    """The written file, its manifest, each seed's record, and the VAE-decoded `x0` videos asked
    for with `decode_steps`: `videos[(seed_idx, step)]` `[3, frames, height, width]` in [-1, 1],
    f32 (what the file stores as `s{seed_idx}/k{step}/video`, before rounding to its storage dtype)."""

    path: Path
    manifest: dict[str, Any]
    seeds: list[SeedRecord]
    videos: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)


def scheduler_info(scheduler: Any) -> tuple[str, float]:
    """`(schedule.scheduler, schedule.shift)` for a diffusers flow-matching scheduler; raises
    `ValueError` for a scheduler whose model output is not a flow-matching velocity."""
    name = type(scheduler).__name__
    config = scheduler.config
    if name == "FlowMatchEulerDiscreteScheduler":
        exotic = [
            key
            for key in ("use_dynamic_shifting", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                        "invert_sigmas", "stochastic_sampling")
            if config.get(key)
        ] + (["shift_terminal"] if config.get("shift_terminal") else [])
        if exotic:
            warnings.warn(
                f"the scheduler sets {', '.join(exotic)}: the file records the sigmas it used, but the engine's "
                "own Euler schedule for this shift will differ",
                stacklevel=3,
            )
        return "euler", float(config.shift)
    if name == "UniPCMultistepScheduler":
        if config.get("prediction_type") != "flow_prediction" or not config.get("use_flow_sigmas"):
            raise ValueError(
                "UniPCMultistepScheduler must run with prediction_type='flow_prediction' and use_flow_sigmas=True "
                "(as Wan's checkpoints ship it): only then is the model output a velocity with x0 = x_t - sigma * v"
            )
        return "unipc", float(config.flow_shift)
    raise ValueError(
        f"{name} is not supported: the format records FlowMatchEulerDiscreteScheduler ('euler') or "
        "UniPCMultistepScheduler in its flow configuration ('unipc')"
    )


def transformers_of(pipe: Any) -> list[torch.nn.Module]:
    """The pipeline's transformers: `transformer`, and `transformer_2` for Wan2.2 A14B."""
    models = [model for model in (getattr(pipe, "transformer", None), getattr(pipe, "transformer_2", None)) if model]
    if not models:
        raise ValueError("the pipeline has no transformer")
    return models


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    """The transformer's diffusers `config.json` as a dict (what `save_pretrained` writes)."""
    return json.loads(model.to_json_string())


def decode_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Decodes latents `[C, F, H, W]` with the pipeline's VAE, un-normalising them as the Wan
    pipelines do: the video `[3, frames, height, width]`, f32 on the CPU, in [-1, 1]."""
    vae = pipe.vae
    device = next(vae.parameters()).device
    z = latents.unsqueeze(0).to(device=device, dtype=vae.dtype)
    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(z.device, z.dtype)
    inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(z.device, z.dtype)
    with torch.no_grad():
        video = vae.decode(z / inverse_std + mean, return_dict=False)[0]
    return video[0].float().cpu()


class _Recorder:
    """Wraps `pipe.prepare_latents` and `pipe.scheduler.step` for one seed's pipeline call."""

    def __init__(self, pipe: Any, seed: Seed, capture: TransformerCapture | None, request: CaptureRequest | None):
        self.pipe = pipe
        self.seed = seed
        self.capture = capture
        self.request = request
        self.record = SeedRecord()
        self.condition: tuple[torch.Tensor, torch.Tensor] | None = None  # (condition, mask), [1, C, F|1, H, W]
        self.capture_steps: list[int] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _Recorder:
        self._saved = [(obj, attr, vars(obj).get(attr)) for obj, attr in self._targets()]
        self.pipe.prepare_latents = self._prepare_latents
        self.pipe.scheduler.step = self._step
        return self

    def __exit__(self, *exc: object) -> None:
        for obj, attr, previous in self._saved:
            if previous is None:
                vars(obj).pop(attr, None)
            else:
                setattr(obj, attr, previous)

    def _targets(self) -> list[tuple[Any, str]]:
        return [(self.pipe, "prepare_latents"), (self.pipe.scheduler, "step")]

    def _prepare_latents(self, *args: Any, **kwargs: Any) -> Any:
        original = self._saved[0][2] or functools.partial(type(self.pipe).prepare_latents, self.pipe)
        out = original(*args, **kwargs)
        latents = out[0] if isinstance(out, tuple) else out
        if latents.dim() != 5 or latents.shape[0] != 1:
            raise ValueError(f"export runs one video per pipeline call; the latents are {list(latents.shape)}")
        # Text-to-video returns the noise alone; Wan2.1-style image-to-video `(noise, condition)`,
        # the condition entering as extra input channels (the latent itself has no clean frame);
        # Wan2.2 TI2V `(noise, condition, first_frame_mask)`, the clean image latent replacing
        # frame 0 wherever the mask is 0 (a condition frame in the format's sense).
        if isinstance(out, tuple) and len(out) == 3:
            self.condition = (out[1].float(), out[2].float())
        if isinstance(self.seed, int):
            noise = stepscope_noise(self.seed, latents.shape[1:]).unsqueeze(0).to(latents.device, latents.dtype)
            latents = noise
            out = (noise, *out[1:]) if isinstance(out, tuple) else noise
        elif isinstance(self.seed, torch.Tensor) and not torch.equal(latents[0].cpu().float(), self.seed.float()):
            raise RuntimeError("the pipeline did not start from the given noise tensor")
        self._check_request(latents)
        if 0 in self.capture_steps and self.capture is not None:
            self.capture.arm(guided=self._guided())
        return out

    def _guided(self) -> bool:
        """Whether the pipeline runs an unconditional pass after each conditional one."""
        return bool(getattr(self.pipe, "do_classifier_free_guidance", False))

    def _guidance(self) -> float:
        """The guidance scale of the captured pass: Wan2.2 A14B's low-noise expert may run with its own."""
        second = getattr(self.pipe, "transformer_2", None)
        scale_2 = getattr(self.pipe, "_guidance_scale_2", None)
        if second is not None and scale_2 is not None and self.capture is not None and self.capture.pass_model is second:
            return float(scale_2)
        return float(getattr(self.pipe, "guidance_scale", 1.0))

    def _check_request(self, latents: torch.Tensor) -> None:
        steps = len(self.pipe.scheduler.timesteps)
        if self.request is None:
            return
        p_t, p_h, p_w = transformers_of(self.pipe)[0].config.patch_size
        _, _, frames, height, width = latents.shape
        tokens = (frames // p_t) * (height // p_h) * (width // p_w)
        far = [q for q in self.request.query_tokens if q >= tokens]
        if far:
            raise ValueError(f"query token {far[0]} does not exist (the latent has {tokens} tokens)")
        wanted = range(steps) if self.request.steps is None else self.request.steps
        late = [k for k in wanted if k >= steps]
        if late:
            raise ValueError(f"capture step {late[0]} does not exist (the run has {steps} steps)")
        self.capture_steps = list(wanted)

    def _impose(self, latents: torch.Tensor) -> torch.Tensor:
        """Puts the clean condition back on its frames (identity without a condition frame)."""
        if self.condition is None:
            return latents
        condition, mask = self.condition
        return (1 - mask) * condition + mask * latents

    def _step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        scheduler = self.pipe.scheduler
        step = len(self.record.latents)
        if step >= len(scheduler.timesteps) or float(timestep) != float(scheduler.timesteps[step]):
            raise RuntimeError(
                f"scheduler step {step} was called with timestep {float(timestep)}, not the schedule's; "
                "export needs one scheduler step per timestep"
            )
        sigma = scheduler.sigmas[step].to(device=sample.device, dtype=torch.float32)
        x_t = self._impose(sample.float())
        velocity = model_output.float()
        x0 = self._impose(x_t - sigma * velocity)
        self.record.latents.append(x_t[0].cpu())
        self.record.velocity.append(velocity[0].cpu())
        self.record.x0.append(x0[0].cpu())
        if self.capture is not None and step in self.capture_steps:
            self.record.captures[step] = self.capture.take(x_t, sigma, self._guidance(), self._impose)
        original = self._saved[1][2] or functools.partial(type(scheduler).step, scheduler)
        out = original(model_output, timestep, sample, *args, **kwargs)
        if self.capture is not None and step + 1 in self.capture_steps:
            self.capture.arm(guided=self._guided())
        return out


def export_run(
    pipe: Any,
    path: str | os.PathLike[str],
    *,
    seeds: Sequence[Seed],
    capture: CaptureRequest | None = None,
    storage: str = "f32",
    capture_storage: str | None = None,
    model_source: str | None = None,
    prompt_text: str | None = None,
    prompt_embeddings: str | None = None,
    decode_steps: DecodeSteps = (),
    video_storage: str | None = None,
    **call_kwargs: Any,
) -> ExportResult:
    """Runs `pipe` (a diffusers `WanPipeline` or `WanImageToVideoPipeline`) once per seed and
    writes the runs, every step recorded, as one trajectory file at `path`.

    `call_kwargs` go to the pipeline call as they are (`prompt`, `negative_prompt`, `prompt_embeds`,
    `negative_prompt_embeds`, `image`, `height`, `width`, `num_frames`, `num_inference_steps`,
    `guidance_scale`, ...); the exporter sets `latents` / `generator` from each seed and asks for
    `output_type="latent"`. `capture` selects captures inside the transformer; `storage` and
    `capture_storage` are the storage dtypes (`"f32"`, `"f16"`, `"bf16"`) of the step tensors and
    of the captures. `model_source`, `prompt_text` and `prompt_embeddings` fill the manifest's
    provenance where the pipeline cannot tell.

    `decode_steps` lists steps whose `x0` is decoded through the pipeline's VAE (`decode_latents`,
    the pipeline's own de-normalisation and `vae.decode`) and stored in the file as
    `s{s}/k{k}/video` `[3, F_v, H_v, W_v]` in [-1, 1], the manifest recording `video` (shape and
    decoder class) and each seed's `video_steps`; a list applies to every seed, a mapping
    `{seed_index: steps}` to the seeds it names. A step a seed does not record is an error.
    `video_storage` is the videos' storage dtype, `storage` when `None`. The videos are also
    returned in `ExportResult.videos` (f32). Not to be confused with the `decoded` capture, the
    logit lens (`capture.py`).
    """
    for key in ("latents", "generator", "output_type", "return_dict", "num_videos_per_prompt"):
        if key in call_kwargs:
            raise ValueError(f"`{key}` is set by the exporter (from `seeds`); do not pass it")
    if not seeds:
        raise ValueError("`seeds` is empty: give at least one seed")
    for option, value in (("storage", storage), ("capture_storage", capture_storage), ("video_storage", video_storage)):
        if value is not None and value not in STORAGE_DTYPES:
            raise ValueError(f"`{option}` is {value!r}; the storage dtypes are {', '.join(STORAGE_DTYPES)}")
    decode_plan = _decode_plan(decode_steps, len(seeds))
    if any(decode_plan) and getattr(pipe, "vae", None) is None:
        raise ValueError("`decode_steps` needs the pipeline's VAE, and the pipeline has none")
    models = transformers_of(pipe)
    request = capture.normalised(models[0].config.num_layers) if capture is not None else None
    kind, shift = scheduler_info(pipe.scheduler)

    records: list[SeedRecord] = []
    schedule: tuple[list[float], list[float]] | None = None
    condition_frame = False
    for seed in seeds:
        kwargs = dict(call_kwargs)
        if isinstance(seed, torch.Generator):
            kwargs["generator"] = seed
        elif isinstance(seed, torch.Tensor):
            if seed.dim() != 4:
                raise ValueError(f"a noise tensor seed must be [C, F, H, W], not {list(seed.shape)}")
            kwargs["latents"] = seed.unsqueeze(0)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"a seed is an int, a [C, F, H, W] tensor or a torch.Generator, not {type(seed).__name__}")
        capturer = TransformerCapture(models, request) if request is not None else None
        recorder = _Recorder(pipe, seed, capturer, request)
        with recorder, (capturer if capturer is not None else contextlib.nullcontext()):
            with torch.no_grad():
                out = pipe(**kwargs, output_type="latent", return_dict=False, num_videos_per_prompt=1)
        record = recorder.record
        record.final = out[0][0].float().cpu()
        steps = len(pipe.scheduler.timesteps)
        if len(record.latents) != steps:
            raise RuntimeError(f"the pipeline took {len(record.latents)} scheduler steps of its {steps}")
        run_schedule = ([float(s) for s in pipe.scheduler.sigmas], [float(t) for t in pipe.scheduler.timesteps])
        if schedule is not None and run_schedule != schedule:
            raise ValueError("the seeds ran with different schedules; export them to separate files")
        schedule = run_schedule
        condition_frame = recorder.condition is not None
        records.append(record)

    assert schedule is not None
    sigmas, timesteps = schedule
    if len(sigmas) != len(timesteps) + 1:
        raise RuntimeError(f"the scheduler has {len(sigmas)} sigmas for {len(timesteps)} steps; expected steps + 1")
    steps = len(timesteps)
    recorded = list(range(steps))
    for seed_idx, wanted in enumerate(decode_plan):
        unrecorded = [step for step in wanted if step not in recorded]
        if unrecorded:
            raise ValueError(
                f"decode step {unrecorded[0]} is not recorded for seed {seed_idx}: it records steps "
                f"{recorded[0]} to {recorded[-1]} (the run has {steps} steps), and only recorded steps can be decoded"
            )
    capture_steps = [] if request is None else list(range(steps) if request.steps is None else request.steps)
    model = models[0]
    guidance_scale = float(getattr(pipe, "guidance_scale", call_kwargs.get("guidance_scale", 1.0)))
    guidance_2 = getattr(pipe, "_guidance_scale_2", None)
    if len(models) > 1 and guidance_2 is not None and float(guidance_2) != guidance_scale:
        warnings.warn(
            f"the low-noise expert ran with guidance {guidance_2}; the manifest records {guidance_scale} only",
            stacklevel=2,
        )
    prompt = prompt_text if prompt_text is not None else call_kwargs.get("prompt")
    videos = {
        (seed_idx, step): decode_latents(pipe, records[seed_idx].x0[step])
        for seed_idx, wanted in enumerate(decode_plan)
        for step in wanted
    }
    video_shapes = {tuple(video.shape) for video in videos.values()}
    if len(video_shapes) > 1:
        raise RuntimeError(f"the VAE decoded videos of different shapes {sorted(video_shapes)}")
    # Optional fields are left out when unused: a file without videos is what earlier versions wrote.
    video_field = (
        {"video": {"shape": list(video_shapes.pop()), "decoder": type(pipe.vae).__name__}} if videos else {}
    )
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_by": CREATED_BY,
        "model": {
            "source": model_source or _model_source(pipe, model),
            "config": model_config(model),
            "dtype": _TORCH_DTYPE_NAMES.get(model.dtype, str(model.dtype).removeprefix("torch.")),
        },
        "conditioning": {
            "prompt": prompt if isinstance(prompt, str) else None,
            "prompt_embeddings": prompt_embeddings or _embeddings_source(pipe, call_kwargs),
            "guidance_scale": guidance_scale,
            "negative_prompt": guidance_scale > 1.0,
            "condition_frame": condition_frame,
            "task": None,
        },
        "schedule": {"scheduler": kind, "steps": steps, "shift": shift, "sigmas": sigmas, "timesteps": timesteps},
        "latent_shape": list(records[0].latents[0].shape),
        "patch_size": list(model.config.patch_size),
        "step_tensors": ["latents", "velocity", "x0"],
        "seeds": [
            {
                "noise": {"rng_seed": seed} if isinstance(seed, int) else "given",
                "forked_from": None,
                "steps": list(range(steps)),
                "capture_steps": capture_steps,
                "final_latents": True,
                **({"video_steps": decode_plan[seed_idx]} if decode_plan[seed_idx] else {}),
            }
            for seed_idx, seed in enumerate(seeds)
        ],
        **video_field,
        "captures": {
            "layers": list(request.layers) if request else [],
            "kinds": list(request.kinds) if request else [],
            "query_tokens": list(request.query_tokens) if request else [],
        },
    }

    tensors: dict[str, torch.Tensor] = {}
    storage_of: dict[str, str] = {}
    for seed_idx, record in enumerate(records):
        for step in range(steps):
            tensors[step_name(seed_idx, step, "latents")] = record.latents[step]
            tensors[step_name(seed_idx, step, "velocity")] = record.velocity[step]
            tensors[step_name(seed_idx, step, "x0")] = record.x0[step]
        for step in decode_plan[seed_idx]:
            name = video_name(seed_idx, step)
            tensors[name] = videos[(seed_idx, step)]
            storage_of[name] = video_storage or storage
        for step, captured in record.captures.items():
            for (layer, kind), tensor in captured.items():
                name = capture_name(seed_idx, step, layer, kind)
                tensors[name] = tensor
                storage_of[name] = capture_storage or storage
        assert record.final is not None
        tensors[final_name(seed_idx)] = record.final
    written = write_trajectory(path, manifest, tensors, storage=storage_of, default_storage=storage)
    return ExportResult(path=written, manifest=manifest, seeds=records, videos=videos)


def _decode_plan(decode_steps: DecodeSteps, seed_count: int) -> list[list[int]]:
    """Per seed index, the distinct steps `decode_steps` asks to decode, in increasing order."""
    if isinstance(decode_steps, Mapping):
        stray = [
            key for key in decode_steps
            if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < seed_count
        ]
        if stray:
            raise ValueError(
                f"`decode_steps` names seed {stray[0]!r}, but the run has seed indices 0 to {seed_count - 1}"
            )
        per_seed = [decode_steps.get(seed_idx, ()) for seed_idx in range(seed_count)]
    else:
        per_seed = [decode_steps] * seed_count
    plan = []
    for wanted in per_seed:
        if isinstance(wanted, (str, bytes)) or not isinstance(wanted, Iterable):
            raise TypeError(f"decode steps are a list of step indices, not {wanted!r}")
        wanted = list(wanted)
        odd = [step for step in wanted if isinstance(step, bool) or not isinstance(step, int)]
        if odd:
            raise TypeError(f"a decode step is a step index (an int), not {odd[0]!r}")
        plan.append(sorted(set(wanted)))
    return plan


def _model_source(pipe: Any, model: torch.nn.Module) -> str:
    for candidate in (getattr(pipe.config, "_name_or_path", None), getattr(model.config, "_name_or_path", None)):
        if candidate:
            return str(candidate)
    return "unknown (a diffusers pipeline built in memory)"


def _embeddings_source(pipe: Any, call_kwargs: Mapping[str, Any]) -> str:
    if call_kwargs.get("prompt_embeds") is not None:
        return "given: prompt_embeds passed to the pipeline"
    encoder = getattr(pipe, "text_encoder", None)
    if encoder is None:
        return "unknown"
    name = getattr(getattr(encoder, "config", None), "_name_or_path", "") or ""
    return f"{type(encoder).__name__} {name}".strip()

