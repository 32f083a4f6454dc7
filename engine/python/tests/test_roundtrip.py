"""Round trip: export tiny random Wan pipeline runs, read the files back with plain `safetensors` +
`json`, and compare with what the pipeline (and an independent denoising loop) computed."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import tiny_wan as tw
from stepscope_export import CaptureRequest, check_file, export_run, reduce, stepscope_noise
from stepscope_export.capture import attention_probs
from stepscope_export.names import parse_name

TOL = 1e-6
VIDEO_TOL = 1e-5
VIDEO_SHAPE = [3, tw.FRAMES, tw.HEIGHT, tw.WIDTH]
ALL_KINDS = ["decoded", "token_norm", "pca3", "self_attn", "cross_attn", "hidden", "x0"]
QUERIES = [0, 5, 17]


def read(path: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, str]]:
    """The manifest, every tensor (f32) and every stored dtype, read with `safetensors` alone."""
    with safe_open(path, framework="pt") as file:
        manifest = json.loads(file.metadata()["stepscope.manifest"])
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    dtypes = {name: str(tensor.dtype) for name, tensor in tensors.items()}
    return manifest, {name: tensor.float() for name, tensor in tensors.items()}, dtypes


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


def reference_loop(pipe, noise: torch.Tensor, embeds: torch.Tensor, negative: torch.Tensor | None, guidance: float, steps: int):
    """An independent text-to-video denoising loop (what `WanPipeline.__call__` does): per step
    `(x_t, v, x0)` `[C, F, H, W]`, and the final latents."""
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    latents = noise.unsqueeze(0)
    per_step = []
    with torch.no_grad():
        for k, t in enumerate(scheduler.timesteps):
            timestep = t.expand(1)
            v = pipe.transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=embeds, return_dict=False)[0]
            if negative is not None and guidance > 1:
                v_neg = pipe.transformer(
                    hidden_states=latents, timestep=timestep, encoder_hidden_states=negative, return_dict=False
                )[0]
                v = v_neg + guidance * (v - v_neg)
            per_step.append((latents[0], v[0], latents[0] - scheduler.sigmas[k] * v[0]))
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
    return per_step, latents[0]


def wan_decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """Latents `[C, F, H, W]` decoded as `WanPipeline.__call__` decodes its output, written out
    independently of the exporter: de-normalised with the VAE's `latents_mean` / `latents_std`,
    then `vae.decode`; `[3, frames, height, width]` before postprocessing."""
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(-1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(-1, 1, 1, 1)
    with torch.no_grad():
        return vae.decode((latents * std + mean).unsqueeze(0), return_dict=False)[0][0]


@pytest.fixture(scope="module")
def t2v_export(tmp_path_factory):
    """A 4-step UniPC run with guidance 3, two seeds, every capture kind at both layers, x0
    decoded at steps 1 and 3 of seed 0 and step 3 of seed 1."""
    pipe = tw.t2v_pipeline()
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = tw.text_embeds(10), tw.text_embeds(11)
    path = tmp_path_factory.mktemp("t2v") / "run.safetensors"
    result = export_run(
        pipe,
        path,
        seeds=[42, 7],
        capture=CaptureRequest(layers=[1, 0], kinds=ALL_KINDS, query_tokens=QUERIES, steps=[0, 3]),
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        **tw.SIZE,
        num_inference_steps=4,
        guidance_scale=3.0,
        prompt_text="a tiny test",
        decode_steps={0: [3, 1], 1: [3]},
    )
    return pipe, embeds, negative, path, result


def test_t2v_file_matches_the_pipeline_and_an_independent_loop(t2v_export):
    pipe, embeds, negative, path, result = t2v_export
    manifest, tensors, _ = read(path)
    assert manifest == result.manifest
    assert manifest["format_version"] == 2
    assert manifest["created_by"].startswith("stepscope_export ")
    assert manifest["latent_shape"] == tw.LATENT_SHAPE
    assert [seed["noise"] for seed in manifest["seeds"]] == [{"rng_seed": 42}, {"rng_seed": 7}]
    assert manifest["conditioning"]["guidance_scale"] == 3.0 and manifest["conditioning"]["negative_prompt"]
    assert manifest["conditioning"]["condition_frame"] is False
    assert manifest["model"]["config"]["num_layers"] == tw.NUM_LAYERS
    for seed_idx, seed in enumerate((42, 7)):
        noise = stepscope_noise(seed, tw.LATENT_SHAPE)
        # The pipeline itself, started from the same noise.
        pipeline_final = pipe(
            prompt_embeds=embeds,
            negative_prompt_embeds=negative,
            **tw.SIZE,
            num_inference_steps=4,
            guidance_scale=3.0,
            latents=noise.unsqueeze(0),
            output_type="latent",
            return_dict=False,
        )[0][0]
        assert max_diff(tensors[f"s{seed_idx}/final/latents"], pipeline_final) <= TOL
        assert torch.equal(tensors[f"s{seed_idx}/k0/latents"], noise), "step 0 enters with Stepscope's seeded noise"
        per_step, loop_final = reference_loop(pipe, noise, embeds, negative, 3.0, 4)
        assert max_diff(loop_final, pipeline_final) <= TOL
        for k, (x_t, v, x0) in enumerate(per_step):
            assert max_diff(tensors[f"s{seed_idx}/k{k}/latents"], x_t) <= TOL
            assert max_diff(tensors[f"s{seed_idx}/k{k}/velocity"], v) <= TOL
            assert max_diff(tensors[f"s{seed_idx}/k{k}/x0"], x0) <= TOL


def test_x0_is_x_t_minus_sigma_v_with_the_manifest_sigmas(t2v_export):
    _, _, _, path, _ = t2v_export
    manifest, tensors, _ = read(path)
    sigmas = manifest["schedule"]["sigmas"]
    for seed_idx, seed in enumerate(manifest["seeds"]):
        for k in seed["steps"]:
            x_t, v, x0 = (tensors[f"s{seed_idx}/k{k}/{kind}"] for kind in ("latents", "velocity", "x0"))
            assert max_diff(x0, x_t - torch.tensor(sigmas[k], dtype=torch.float32) * v) <= TOL


def test_the_schedule_is_the_schedulers(t2v_export):
    _, _, _, path, _ = t2v_export
    manifest, _, _ = read(path)
    scheduler = tw.unipc(3.0)
    scheduler.set_timesteps(4)
    schedule = manifest["schedule"]
    assert schedule["scheduler"] == "unipc" and schedule["shift"] == 3.0 and schedule["steps"] == 4
    assert schedule["sigmas"] == [float(s) for s in scheduler.sigmas]
    assert schedule["timesteps"] == [float(t) for t in scheduler.timesteps]
    assert schedule["sigmas"][-1] == 0.0 and len(schedule["sigmas"]) == 5


def test_captures_have_the_spec_shapes_and_meaning(t2v_export):
    _, _, _, path, _ = t2v_export
    manifest, tensors, _ = read(path)
    grid = [3, 2, 3]
    tokens = math.prod(grid)
    assert manifest["captures"] == {"layers": [0, 1], "kinds": ALL_KINDS, "query_tokens": QUERIES}
    shapes = {
        "decoded": tw.LATENT_SHAPE,
        "token_norm": grid,
        "pca3": [3, *grid],
        "self_attn": [tw.HEADS, len(QUERIES), tokens],
        "cross_attn": [tw.HEADS, len(QUERIES), tw.TEXT_LEN],
        "hidden": [tw.HEADS * tw.HEAD_DIM, *grid],
        "x0": tw.LATENT_SHAPE,
    }
    for seed_idx in (0, 1):
        for k in (0, 3):
            for layer in (0, 1):
                got = {kind: tensors[f"s{seed_idx}/k{k}/layer{layer}/{kind}"] for kind in ALL_KINDS}
                for kind, tensor in got.items():
                    assert list(tensor.shape) == shapes[kind], (kind, tensor.shape)
                for kind in ("self_attn", "cross_attn"):
                    assert (got[kind] >= 0).all()
                    assert max_diff(got[kind].sum(-1), torch.ones(tw.HEADS, len(QUERIES))) <= 1e-5
                hidden = got["hidden"].reshape(tw.HEADS * tw.HEAD_DIM, tokens).t()  # [N, D]
                assert max_diff(got["token_norm"].reshape(-1), hidden.norm(dim=-1)) <= 1e-5
                # The PCA of the block's own output (the reduction itself is tested in test_format.py).
                assert max_diff(got["pca3"], reduce.pca3(hidden, tuple(grid))) <= 1e-4
            # The last block's clean prediction, guided over both passes, is the step's x0.
            assert max_diff(tensors[f"s{seed_idx}/k{k}/layer1/x0"], tensors[f"s{seed_idx}/k{k}/x0"]) <= 1e-5
    expected_names = {
        f"s{s}/k{k}/{kind}" for s in (0, 1) for k in range(4) for kind in ("latents", "velocity", "x0")
    } | {f"s{s}/final/latents" for s in (0, 1)} | {
        f"s{s}/k{k}/layer{layer}/{kind}" for s in (0, 1) for k in (0, 3) for layer in (0, 1) for kind in ALL_KINDS
    } | {"s0/k1/video", "s0/k3/video", "s1/k3/video"}
    assert set(tensors) == expected_names


def test_the_file_stores_the_vae_decoded_x0_videos(t2v_export):
    pipe, embeds, negative, path, result = t2v_export
    manifest, tensors, dtypes = read(path)
    assert manifest["video"] == {"shape": VIDEO_SHAPE, "decoder": "AutoencoderKLWan"}
    assert [seed["video_steps"] for seed in manifest["seeds"]] == [[1, 3], [3]]
    assert set(result.videos) == {(0, 1), (0, 3), (1, 3)}
    for (seed_idx, step), video in result.videos.items():
        name = f"s{seed_idx}/k{step}/video"
        stored = tensors[name]
        assert dtypes[name] == "torch.float32" and list(stored.shape) == VIDEO_SHAPE
        assert torch.equal(stored, video)
        # The file's own x0 at that step, decoded here.
        assert max_diff(stored, wan_decode(pipe, tensors[f"s{seed_idx}/k{step}/x0"])) <= VIDEO_TOL
        assert stored.abs().max() <= 1.0 and stored.std() > 0.01
    # `wan_decode` is the pipeline's own decoding: the pipeline's video of seed 42, postprocessed
    # to [0, 1] frames-first, is the decoded final latents.
    frames = pipe(
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        **tw.SIZE,
        num_inference_steps=4,
        guidance_scale=3.0,
        latents=stepscope_noise(42, tw.LATENT_SHAPE).unsqueeze(0),
        output_type="pt",
        return_dict=False,
    )[0][0]
    decoded = wan_decode(pipe, tensors["s0/final/latents"])
    assert max_diff(frames.permute(1, 0, 2, 3), (decoded / 2 + 0.5).clamp(0, 1)) <= VIDEO_TOL


def test_decoding_a_step_the_seed_does_not_record_is_an_error(tmp_path):
    pipe = tw.t2v_pipeline(scheduler=tw.euler(3.0))
    pipe.set_progress_bar_config(disable=True)
    call = dict(prompt_embeds=tw.text_embeds(12), **tw.SIZE, num_inference_steps=2, guidance_scale=1.0)
    path = tmp_path / "run.safetensors"
    with pytest.raises(ValueError, match="decode step 2 is not recorded for seed 0"):
        export_run(pipe, path, seeds=[1], decode_steps=[0, 2], **call)
    with pytest.raises(ValueError, match="decode step 5 is not recorded for seed 1"):
        export_run(pipe, path, seeds=[1, 2], decode_steps={0: [1], 1: [5]}, **call)
    with pytest.raises(ValueError, match="names seed 1"):
        export_run(pipe, path, seeds=[1], decode_steps={1: [0]}, **call)
    assert not path.exists()


def test_the_layout_is_the_specs(t2v_export):
    _, _, _, path, _ = t2v_export
    check_file(path)
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    assert (8 + length) % 8 == 0
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__")
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    sizes = {"F32": 4, "F16": 2, "BF16": 2}
    keys = [(-sizes[info["dtype"]], parse_name(name).order_key()) for name, info in entries]
    assert keys == sorted(keys), "widest dtype first, then file order"
    position = 0
    for name, info in entries:
        start, end = info["data_offsets"]
        assert start == position and start % sizes[info["dtype"]] == 0, name
        position = end
    assert 8 + length + position == len(data)
    # File order puts s0/k2 before s0/k10-like names and the final latents after every step.
    names = [name for name, _ in entries]
    assert names.index("s0/final/latents") > names.index("s0/k3/layer1/hidden")
    assert names.index("s0/k3/latents") < names.index("s0/k3/layer0/decoded")
    assert names.index("s0/k3/x0") < names.index("s0/k3/video") < names.index("s0/k3/layer0/decoded")
    assert names.index("s0/k1/video") == names.index("s0/k1/x0") + 1


def test_the_last_layers_logit_lens_is_the_velocity_without_guidance(tmp_path):
    pipe = tw.t2v_pipeline(scheduler=tw.euler(5.0))
    pipe.set_progress_bar_config(disable=True)
    result = export_run(
        pipe,
        tmp_path / "run.safetensors",
        seeds=[3],
        capture=CaptureRequest(layers=[tw.NUM_LAYERS - 1], kinds=["decoded"]),
        prompt_embeds=tw.text_embeds(12),
        **tw.SIZE,
        num_inference_steps=3,
        guidance_scale=1.0,
        storage="f32",
    )
    manifest, tensors, _ = read(result.path)
    assert "video" not in manifest and all("video_steps" not in seed for seed in manifest["seeds"])
    assert not any(name.endswith("/video") for name in tensors) and not result.videos
    assert manifest["schedule"]["scheduler"] == "euler" and manifest["schedule"]["shift"] == 5.0
    assert manifest["conditioning"]["negative_prompt"] is False
    for k in range(3):
        decoded = tensors[f"s0/k{k}/layer{tw.NUM_LAYERS - 1}/decoded"]
        assert max_diff(decoded, tensors[f"s0/k{k}/velocity"]) <= TOL


def truncated_velocity(pipe, layer: int, latents, timestep, embeds) -> torch.Tensor:
    """The transformer's output with every block after `layer` removed: the output head applied to
    block `layer`'s output, computed by the model's own forward (not the exporter's logit lens)."""
    model = copy.deepcopy(pipe.transformer)
    model.blocks = model.blocks[: layer + 1]
    with torch.no_grad():
        return model(hidden_states=latents, timestep=timestep, encoder_hidden_states=embeds, return_dict=False)[0]


@pytest.mark.parametrize("guidance", [1.0, 3.0], ids=["no_guidance", "guidance_3"])
def test_each_layers_x0_is_its_clean_prediction_combined_over_both_passes(tmp_path, guidance):
    """`layer{l}/x0` is `x_t - sigma (v_u + g (v_c - v_u))` with `v` the model truncated after block
    `l`; at the last layer it is the step's `x0` (within 1e-5)."""
    pipe = tw.t2v_pipeline()
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = tw.text_embeds(30), tw.text_embeds(31)
    layers = list(range(tw.NUM_LAYERS))
    result = export_run(
        pipe,
        tmp_path / "x0.safetensors",
        seeds=[5],
        capture=CaptureRequest(layers=layers, kinds=["x0", "token_norm"]),
        prompt_embeds=embeds,
        negative_prompt_embeds=negative if guidance > 1 else None,
        **tw.SIZE,
        num_inference_steps=3,
        guidance_scale=guidance,
    )
    manifest, tensors, _ = read(result.path)
    check_file(result.path)
    assert manifest["captures"]["kinds"] == ["token_norm", "x0"]
    sigmas = manifest["schedule"]["sigmas"]
    timesteps = manifest["schedule"]["timesteps"]
    for k in range(3):
        x_t = tensors[f"s0/k{k}/latents"].unsqueeze(0)
        last = tensors[f"s0/k{k}/layer{tw.NUM_LAYERS - 1}/x0"]
        assert max_diff(last, tensors[f"s0/k{k}/x0"]) <= 1e-5, k
        timestep = torch.tensor([timesteps[k]])
        for layer in layers:
            velocity = truncated_velocity(pipe, layer, x_t, timestep, embeds)
            if guidance > 1:
                unconditional = truncated_velocity(pipe, layer, x_t, timestep, negative)
                velocity = unconditional + guidance * (velocity - unconditional)
            expected = (x_t - sigmas[k] * velocity)[0]
            assert max_diff(tensors[f"s0/k{k}/layer{layer}/x0"], expected) <= 1e-5, (k, layer)


def test_storage_dtypes_round_to_nearest(tmp_path):
    pipe = tw.t2v_pipeline(scheduler=tw.euler(3.0))
    pipe.set_progress_bar_config(disable=True)
    result = export_run(
        pipe,
        tmp_path / "run.safetensors",
        seeds=[torch.Generator().manual_seed(0)],
        capture=CaptureRequest(layers=[0], kinds=["token_norm", "self_attn"], query_tokens=[4]),
        prompt_embeds=tw.text_embeds(12),
        **tw.SIZE,
        num_inference_steps=2,
        guidance_scale=1.0,
        storage="f16",
        capture_storage="bf16",
        decode_steps=[1],
    )
    manifest, tensors, dtypes = read(result.path)
    assert manifest["seeds"][0]["noise"] == "given"
    assert dtypes["s0/k1/x0"] == "torch.float16" and dtypes["s0/k1/layer0/self_attn"] == "torch.bfloat16"
    assert dtypes["s0/k1/video"] == "torch.float16", "videos are stored as the step tensors by default"
    assert torch.equal(tensors["s0/k1/video"], result.videos[(0, 1)].half().float())
    record = result.seeds[0]
    assert torch.equal(tensors["s0/k1/x0"], record.x0[1].half().float())
    assert torch.equal(tensors["s0/k0/layer0/token_norm"], record.captures[0][(0, "token_norm")].bfloat16().float())
    check_file(result.path)


def test_attention_probs_reproduce_the_attention_output():
    """The explicit softmax (qk norm, RoPE, 1/sqrt(d)) times V, through `to_out`, is the
    processor's output: the probabilities are the ones the model used."""
    transformer = tw.tiny_transformer()
    seen = {}

    def keep(name):
        def hook(module, args, kwargs, output):
            seen[name] = (args, kwargs, output)

        return hook

    block = transformer.blocks[1]
    handles = [
        block.attn1.register_forward_hook(keep("attn1"), with_kwargs=True),
        block.attn2.register_forward_hook(keep("attn2"), with_kwargs=True),
    ]
    latents = stepscope_noise(5, tw.LATENT_SHAPE).unsqueeze(0)
    with torch.no_grad():
        transformer(hidden_states=latents, timestep=torch.tensor([700.0]), encoder_hidden_states=tw.text_embeds(1))
    for handle in handles:
        handle.remove()
    tokens = 18
    for name, attn in (("attn1", block.attn1), ("attn2", block.attn2)):
        args, kwargs, output = seen[name]
        hidden, context, _, rotary = (list(args) + [None] * 4)[:4]
        context = kwargs.get("encoder_hidden_states", context)
        rotary = kwargs.get("rotary_emb", rotary)
        with torch.no_grad():
            probs = attention_probs(attn, hidden, context, rotary, list(range(tokens)))  # [heads, N, keys]
            values = attn.to_v(hidden if context is None else context)[0].unflatten(1, (attn.heads, -1)).transpose(0, 1)
            merged = (probs @ values).transpose(0, 1).reshape(1, tokens, -1)
            rebuilt = attn.to_out[0](merged)
        assert max_diff(rebuilt, output) <= 1e-5, name


@pytest.mark.parametrize("expand_timesteps", [False, True], ids=["wan21_channel_condition", "wan22_ti2v_frame0"])
def test_image_to_video_runs_round_trip(tmp_path, expand_timesteps):
    pipe = tw.i2v_pipeline(expand_timesteps=expand_timesteps)
    pipe.set_progress_bar_config(disable=True)
    image = tw.random_image()
    embeds = tw.text_embeds(20)
    call = dict(
        image=image, prompt_embeds=embeds, **tw.SIZE,
        num_inference_steps=3, guidance_scale=1.0,
    )
    result = export_run(
        pipe,
        tmp_path / "i2v.safetensors",
        seeds=[11],
        capture=CaptureRequest(layers=[0], kinds=["decoded", "cross_attn", "self_attn", "x0"], query_tokens=[0, 9]),
        decode_steps=[2],
        **call,
    )
    manifest, tensors, _ = read(result.path)
    check_file(result.path)
    assert manifest["video"] == {"shape": VIDEO_SHAPE, "decoder": "AutoencoderKLWan"}
    assert manifest["seeds"][0]["video_steps"] == [2]
    assert max_diff(tensors["s0/k2/video"], wan_decode(pipe, tensors["s0/k2/x0"])) <= VIDEO_TOL
    assert manifest["conditioning"]["condition_frame"] is expand_timesteps
    assert manifest["latent_shape"] == tw.LATENT_SHAPE
    noise = stepscope_noise(11, tw.LATENT_SHAPE).unsqueeze(0)
    final = pipe(**call, latents=noise, output_type="latent", return_dict=False)[0][0]
    assert max_diff(tensors["s0/final/latents"], final) <= TOL
    sigmas = manifest["schedule"]["sigmas"]
    free = slice(1, None) if expand_timesteps else slice(None)  # frames that are denoised
    for k in range(3):
        x_t, v, x0 = (tensors[f"s0/k{k}/{kind}"] for kind in ("latents", "velocity", "x0"))
        assert max_diff(x0[:, free], (x_t - torch.tensor(sigmas[k]) * v)[:, free]) <= TOL
        if expand_timesteps:
            # The clean condition frame is in place in x_t, x0 and the final latents alike, and in
            # each layer's clean prediction.
            assert torch.equal(x_t[:, 0], x0[:, 0]) and torch.equal(x_t[:, 0], tensors["s0/final/latents"][:, 0])
            assert torch.equal(tensors[f"s0/k{k}/layer0/x0"][:, 0], x_t[:, 0])
        assert list(tensors[f"s0/k{k}/layer0/decoded"].shape) == tw.LATENT_SHAPE
    if not expand_timesteps:
        assert max_diff(tensors["s0/k0/latents"], noise[0]) == 0.0


def test_a_bf16_model_exports_its_run_exactly(tmp_path):
    """A model computing in bf16 (as on a GPU server): the manifest says so, the velocity is the
    guided bf16 prediction widened to f32, and the final latents are still the pipeline's."""
    pipe = tw.t2v_pipeline()
    pipe.transformer.to(torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    call = dict(
        prompt_embeds=tw.text_embeds(10), negative_prompt_embeds=tw.text_embeds(11), **tw.SIZE,
        num_inference_steps=3, guidance_scale=2.0,
    )
    result = export_run(
        pipe,
        tmp_path / "bf16.safetensors",
        seeds=[1],
        capture=CaptureRequest(layers=[1], kinds=["decoded", "pca3", "self_attn"], query_tokens=[2]),
        capture_storage="f16",
        decode_steps=[2],
        video_storage="bf16",
        **call,
    )
    manifest, tensors, dtypes = read(result.path)
    assert manifest["model"]["dtype"] == "bf16"
    assert dtypes["s0/k2/video"] == "torch.bfloat16"
    assert torch.equal(tensors["s0/k2/video"], result.videos[(0, 2)].bfloat16().float())
    assert dtypes["s0/k0/velocity"] == "torch.float32" and dtypes["s0/k2/layer1/pca3"] == "torch.float16"
    final = pipe(**call, latents=stepscope_noise(1, tw.LATENT_SHAPE)[None], output_type="latent", return_dict=False)[0][0]
    assert max_diff(tensors["s0/final/latents"], final) <= TOL
    for k in range(3):
        velocity = tensors[f"s0/k{k}/velocity"]
        assert torch.equal(velocity, velocity.bfloat16().float()), "the velocity is the model's bf16 output"
        x_t = tensors[f"s0/k{k}/latents"]
        assert max_diff(tensors[f"s0/k{k}/x0"], x_t - torch.tensor(manifest["schedule"]["sigmas"][k]) * velocity) <= TOL


def test_the_pipeline_is_left_as_it_was(t2v_export):
    pipe = t2v_export[0]
    assert "step" not in vars(pipe.scheduler) and "prepare_latents" not in vars(pipe)
    modules = [pipe.transformer, pipe.transformer.condition_embedder, *pipe.transformer.blocks]
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in modules)
    for block in pipe.transformer.blocks:
        assert type(block.attn1.processor).__name__ == "WanAttnProcessor"
        assert type(block.attn2.processor).__name__ == "WanAttnProcessor"
