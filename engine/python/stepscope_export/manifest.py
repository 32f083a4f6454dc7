"""The manifest of a trajectory file (format version 1): checks and the tensors it promises.

A manifest is a plain `dict` that `json.dumps` writes as is. `check_manifest` applies every rule
of `engine/TRAJECTORY_FORMAT.md` ("The manifest") that the Rust reader applies, so a file this
package writes is one Stepscope opens; `check_tensor_set` checks a set of tensors against it
("The manifest determines the set of tensors exactly").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .names import ATTENTION_KINDS, CAPTURE_KINDS, STEP_TENSORS, VIDEO, TensorName

FORMAT_VERSION = 2
"""The format version this package writes (2 adds checksums to 1; the manifest is 1's)."""

READABLE_VERSIONS = (1, 2)
"""The format versions `check_file` accepts: a version-1 file has no checksums."""

MANIFEST_KEY = "stepscope.manifest"
"""The `__metadata__` key whose value is the manifest's JSON text."""

MAX_ENSEMBLE_MEMBERS = 64
"""The most members a seed-ensemble intervention may have."""

SCHEDULERS = ("euler", "unipc")
"""The values of `schedule.scheduler`."""

_FIELDS = {
    "manifest": {
        "format_version",
        "created_by",
        "model",
        "conditioning",
        "schedule",
        "latent_shape",
        "patch_size",
        "step_tensors",
        "seeds",
        "captures",
    },
    "model": {"source", "config", "dtype"},
    "conditioning": {"prompt", "prompt_embeddings", "guidance_scale", "negative_prompt", "condition_frame", "task"},
    "task": {"name", "seed", "params"},
    "schedule": {"scheduler", "steps", "shift", "sigmas", "timesteps"},
    "seed": {"noise", "forked_from", "steps", "capture_steps", "final_latents"},
    "forked_from": {"seed_index", "step"},
    "captures": {"layers", "kinds", "query_tokens"},
    "video": {"shape", "decoder"},
}
_OPTIONAL_FIELDS = {
    "manifest": frozenset({"video"}),
    "seed": frozenset({"intervention", "video_steps"}),
}
"""Optional fields added within version 1: absent means what files without them always meant
(no decoded video, no intervention), so they are written only when set."""
_INTERVENTION_FIELDS = {
    "paint_x0": {"kind", "pixels", "value"},
    "skip_layers": {"kind", "layers"},
    "ensemble": {"kind", "rng_seeds", "merge_steps"},
}


class ManifestError(ValueError):
    """A manifest, or the tensors beside it, breaks the format; the message names the field."""


def _fields(value: Any, where: str, kind: str, optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(f"`{where}` must be an object, not {type(value).__name__}")
    expected = _FIELDS[kind]
    missing = sorted(expected - set(value))
    unknown = sorted(set(value) - expected - optional)
    if missing:
        raise ManifestError(f"`{where}` lacks the field(s) {', '.join(missing)}")
    if unknown:
        raise ManifestError(f"`{where}` has unknown field(s) {', '.join(unknown)} (format version 1 has none)")
    return value


def _index(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"`{where}` must be a non-negative integer, not {value!r}")
    if value >= 1 << 64:
        raise ManifestError(f"`{where}` is {value}, beyond 64 bits")
    return value


def _indices(value: Any, where: str) -> list[int]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ManifestError(f"`{where}` must be a list of non-negative integers")
    return [_index(item, f"{where}[{i}]") for i, item in enumerate(value)]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(f"`{where}` must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ManifestError(f"`{where}` holds {value}, which is not a finite number")
    return float(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"`{where}` must be a string, not {value!r}")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(f"`{where}` must be true or false, not {value!r}")
    return value


def _strictly_increasing(values: Sequence[int], where: str) -> None:
    if any(a >= b for a, b in zip(values, values[1:])):
        raise ManifestError(f"`{where}` is not strictly increasing: {list(values)}")


def _known_names(value: Any, field: str, known: Sequence[str]) -> Sequence[str]:
    """`value` as a list of distinct names out of `known`; a `ManifestError` naming `field` if not."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ManifestError(f"`{field}` must be a list")
    for name in value:
        if name not in known:
            raise ManifestError(f"`{field}` holds `{name}`; known: {', '.join(known)}")
    _no_repeats(value, field)
    return value


def _no_repeats(values: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ManifestError(f"`{where}` lists `{value}` twice")
        seen.add(value)


def token_grid(manifest: Mapping[str, Any]) -> tuple[int, int, int]:
    """The token grid `[F', H', W']`: the latent shape divided by the patch size."""
    _, frames, height, width = manifest["latent_shape"]
    p_t, p_h, p_w = manifest["patch_size"]
    return frames // p_t, height // p_h, width // p_w


def check_manifest(manifest: Mapping[str, Any], versions: Sequence[int] = (FORMAT_VERSION,)) -> None:
    """Checks every rule the format puts on a manifest of one of `versions` (by default the one
    this package writes); raises `ManifestError` naming the field."""
    _fields(manifest, "manifest", "manifest", optional=_OPTIONAL_FIELDS["manifest"])
    version = manifest["format_version"]
    if version not in versions or isinstance(version, bool):
        allowed = " or ".join(str(v) for v in versions)
        raise ManifestError(f"`format_version` is {version!r}; expected version {allowed}")
    _string(manifest["created_by"], "created_by")

    model = _fields(manifest["model"], "model", "model")
    _string(model["source"], "model.source")
    if not isinstance(model["config"], Mapping):
        raise ManifestError("`model.config` must be an object (`{}` when unknown)")
    _string(model["dtype"], "model.dtype")

    conditioning = _fields(manifest["conditioning"], "conditioning", "conditioning")
    if conditioning["prompt"] is not None:
        _string(conditioning["prompt"], "conditioning.prompt")
    _string(conditioning["prompt_embeddings"], "conditioning.prompt_embeddings")
    _number(conditioning["guidance_scale"], "conditioning.guidance_scale")
    _boolean(conditioning["negative_prompt"], "conditioning.negative_prompt")
    _boolean(conditioning["condition_frame"], "conditioning.condition_frame")
    if conditioning["task"] is not None:
        task = _fields(conditioning["task"], "conditioning.task", "task")
        _string(task["name"], "conditioning.task.name")
        _index(task["seed"], "conditioning.task.seed")
        if not isinstance(task["params"], Mapping):
            raise ManifestError("`conditioning.task.params` must be an object")

    steps = _check_schedule(manifest)
    _check_shapes(manifest)

    step_tensors = _known_names(manifest["step_tensors"], "step_tensors", STEP_TENSORS)

    seeds = manifest["seeds"]
    if not isinstance(seeds, Sequence) or not seeds:
        raise ManifestError("`seeds` is empty: a trajectory holds at least one seed")
    if "video" in manifest:
        _check_video(manifest["video"])
    for seed_idx, seed in enumerate(seeds):
        _check_seed(manifest, seed_idx, seed, steps)
    _check_captures(manifest)


def _check_schedule(manifest: Mapping[str, Any]) -> int:
    schedule = _fields(manifest["schedule"], "schedule", "schedule")
    if schedule["scheduler"] not in SCHEDULERS:
        raise ManifestError(f"`schedule.scheduler` is {schedule['scheduler']!r}; known: {', '.join(SCHEDULERS)}")
    steps = _index(schedule["steps"], "schedule.steps")
    if steps == 0:
        raise ManifestError("`schedule.steps` is 0")
    _number(schedule["shift"], "schedule.shift")
    sigmas, timesteps = schedule["sigmas"], schedule["timesteps"]
    if not isinstance(sigmas, Sequence) or len(sigmas) != steps + 1:
        raise ManifestError(f"`schedule.sigmas` must hold steps + 1 = {steps + 1} values")
    if not isinstance(timesteps, Sequence) or len(timesteps) != steps:
        raise ManifestError(f"`schedule.timesteps` must hold steps = {steps} values")
    for i, sigma in enumerate(sigmas):
        _number(sigma, f"schedule.sigmas[{i}]")
    for i, timestep in enumerate(timesteps):
        _number(timestep, f"schedule.timesteps[{i}]")
    return steps


def _check_shapes(manifest: Mapping[str, Any]) -> None:
    latent_shape = _indices(manifest["latent_shape"], "latent_shape")
    patch_size = _indices(manifest["patch_size"], "patch_size")
    if len(latent_shape) != 4:
        raise ManifestError(f"`latent_shape` must be [C, F, H, W], not {latent_shape}")
    if len(patch_size) != 3:
        raise ManifestError(f"`patch_size` must be [p_t, p_h, p_w], not {patch_size}")
    if 0 in latent_shape:
        raise ManifestError(f"`latent_shape` {latent_shape} has a zero dimension")
    if math.prod(latent_shape) * 4 >= 1 << 64:
        raise ManifestError(f"`latent_shape` {latent_shape} is too large to address")
    for axis, dim, patch in zip(("frames", "height", "width"), latent_shape[1:], patch_size):
        if patch == 0 or dim % patch != 0:
            raise ManifestError(f"`patch_size` {patch_size} does not divide the latent {axis} {dim}")


def _check_video(video: Any) -> None:
    video = _fields(video, "video", "video")
    shape = _indices(video["shape"], "video.shape")
    if len(shape) != 4 or shape[0] != 3:
        raise ManifestError(f"`video.shape` must be [3, F_v, H_v, W_v] (RGB channels first), not {shape}")
    if 0 in shape:
        raise ManifestError(f"`video.shape` {shape} has a zero dimension")
    if math.prod(shape) * 4 >= 1 << 64:
        raise ManifestError(f"`video.shape` {shape} is too large to address")
    _string(video["decoder"], "video.decoder")


def _check_seed(manifest: Mapping[str, Any], seed_idx: int, seed: Any, steps: int) -> None:
    where = f"seeds[{seed_idx}]"
    seed = _fields(seed, where, "seed", optional=_OPTIONAL_FIELDS["seed"])
    noise = seed["noise"]
    if noise != "given":
        if not isinstance(noise, Mapping) or set(noise) != {"rng_seed"}:
            raise ManifestError(f'`{where}.noise` must be "given" or {{"rng_seed": n}}, not {noise!r}')
        _index(noise["rng_seed"], f"{where}.noise.rng_seed")
    recorded = _indices(seed["steps"], f"{where}.steps")
    _strictly_increasing(recorded, f"{where}.steps")
    if recorded and recorded[-1] >= steps:
        raise ManifestError(f"`{where}.steps` holds step {recorded[-1]} but the schedule has {steps} steps")
    captured = _indices(seed["capture_steps"], f"{where}.capture_steps")
    _strictly_increasing(captured, f"{where}.capture_steps")
    stray = sorted(set(captured) - set(recorded))
    if stray:
        raise ManifestError(f"`{where}.capture_steps` holds step {stray[0]}, which is not one of its recorded `steps`")
    if "video_steps" in seed:
        decoded = _indices(seed["video_steps"], f"{where}.video_steps")
        _strictly_increasing(decoded, f"{where}.video_steps")
        stray = sorted(set(decoded) - set(recorded))
        if stray:
            raise ManifestError(f"`{where}.video_steps` holds step {stray[0]}, which is not one of its recorded `steps`")
        if "video" not in manifest:
            raise ManifestError(f"`{where}.video_steps` is set, but the manifest has no `video` (the videos' shape and decoder)")
    _boolean(seed["final_latents"], f"{where}.final_latents")
    fork = seed["forked_from"]
    if fork is not None:
        fork = _fields(fork, f"{where}.forked_from", "forked_from")
        parent = _index(fork["seed_index"], f"{where}.forked_from.seed_index")
        if parent >= seed_idx:
            raise ManifestError(f"`{where}.forked_from.seed_index` is {parent}; a seed can only fork from an earlier one")
        if _index(fork["step"], f"{where}.forked_from.step") > steps:
            raise ManifestError(f"`{where}.forked_from.step` is {fork['step']} but the schedule has {steps} steps")
    if "intervention" in seed:
        if fork is None:
            raise ManifestError(f"`{where}.intervention` is set, but the seed is not a fork")
        _check_intervention(manifest, where, seed["intervention"])


def _check_intervention(manifest: Mapping[str, Any], where: str, intervention: Any) -> None:
    where = f"{where}.intervention"
    kind = intervention.get("kind") if isinstance(intervention, Mapping) else None
    if kind not in _INTERVENTION_FIELDS:
        raise ManifestError(f"`{where}.kind` must be one of {', '.join(_INTERVENTION_FIELDS)}")
    if set(intervention) != _INTERVENTION_FIELDS[kind]:
        raise ManifestError(f"`{where}` of kind {kind} has exactly the fields {sorted(_INTERVENTION_FIELDS[kind])}")
    if kind == "paint_x0":
        channels, *extent = manifest["latent_shape"]
        for pixel in intervention["pixels"]:
            if len(_indices(pixel, f"{where}.pixels")) != 3 or any(i >= n for i, n in zip(pixel, extent)):
                raise ManifestError(f"`{where}` paints pixel {pixel}, outside the {extent} latent frames")
        if len(intervention["value"]) != channels:
            raise ManifestError(f"`{where}` paints {len(intervention['value'])} channel values; the latent has {channels}")
        for i, value in enumerate(intervention["value"]):
            _number(value, f"{where}.value[{i}]")
    elif kind == "skip_layers":
        _indices(intervention["layers"], f"{where}.layers")
    else:
        members = _indices(intervention["rng_seeds"], f"{where}.rng_seeds")
        merge_steps = _index(intervention["merge_steps"], f"{where}.merge_steps")
        if not 2 <= len(members) <= MAX_ENSEMBLE_MEMBERS or merge_steps == 0:
            raise ManifestError(
                f"`{where}` is an ensemble of {len(members)} members over {merge_steps} steps; "
                f"it takes 2 to {MAX_ENSEMBLE_MEMBERS} members and at least one step"
            )


def _check_captures(manifest: Mapping[str, Any]) -> None:
    captures = _fields(manifest["captures"], "captures", "captures")
    _strictly_increasing(_indices(captures["layers"], "captures.layers"), "captures.layers")
    kinds = _known_names(captures["kinds"], "captures.kinds", CAPTURE_KINDS)
    queries = _indices(captures["query_tokens"], "captures.query_tokens")
    token_count = math.prod(token_grid(manifest))
    too_far = [q for q in queries if q >= token_count]
    if too_far:
        raise ManifestError(f"`captures.query_tokens` holds token {too_far[0]} but the token grid has {token_count} tokens")
    if any(kind in ATTENTION_KINDS for kind in kinds) and not queries:
        raise ManifestError("attention is captured but `captures.query_tokens` is empty")


def promised_names(manifest: Mapping[str, Any]) -> Iterator[TensorName]:
    """Every tensor the (checked) manifest promises, in file order."""
    captures = manifest["captures"]
    step_kinds = [kind for kind in STEP_TENSORS if kind in manifest["step_tensors"]]
    capture_kinds = [kind for kind in CAPTURE_KINDS if kind in captures["kinds"]]
    for seed_idx, seed in enumerate(manifest["seeds"]):
        capture_steps = set(seed["capture_steps"])
        video_steps = set(seed.get("video_steps", ()))
        for step in seed["steps"]:
            for kind in step_kinds:
                yield TensorName(seed_idx, step, None, kind)
            if step in video_steps:
                yield TensorName(seed_idx, step, None, VIDEO)
            if step in capture_steps:
                for layer in captures["layers"]:
                    for kind in capture_kinds:
                        yield TensorName(seed_idx, step, layer, kind)
        if seed["final_latents"]:
            yield TensorName(seed_idx, None, None, "latents")


def expected_shape(manifest: Mapping[str, Any], name: TensorName) -> list[int | None]:
    """The shape the tensor `name` must have; `None` marks a free dimension (heads, text length, D)."""
    latent_shape = list(manifest["latent_shape"])
    grid = list(token_grid(manifest))
    queries = len(manifest["captures"]["query_tokens"])
    if name.is_video:
        return list(manifest["video"]["shape"])
    if not name.is_capture or name.kind in ("decoded", "x0"):
        return latent_shape
    return {
        "token_norm": grid,
        "pca3": [3, *grid],
        "self_attn": [None, queries, math.prod(grid)],
        "cross_attn": [None, queries, None],
        "hidden": [None, *grid],
    }[name.kind]


def check_tensor_set(manifest: Mapping[str, Any], shapes: Mapping[str, Sequence[int]]) -> None:
    """Checks that `shapes` (tensor name -> shape) are exactly the tensors the checked manifest
    promises, each with the shape it implies; raises `ManifestError` naming the first mismatch."""
    promised = {str(name): name for name in promised_names(manifest)}
    for text, shape in shapes.items():
        if text not in promised:
            raise ManifestError(f"tensor `{text}` is not one the manifest promises")
        expected = expected_shape(manifest, promised[text])
        if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
            pattern = "[" + ", ".join("any" if e is None else str(e) for e in expected) + "]"
            raise ManifestError(f"tensor `{text}` has shape {list(shape)}; the manifest implies {pattern}")
    missing = [text for text in promised if text not in shapes]
    if missing:
        raise ManifestError(f"the manifest promises tensor `{missing[0]}`, which is missing ({len(missing)} in all)")
