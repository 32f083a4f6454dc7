"""The format side: names, manifest checks, the writer's refusals and atomicity, seeded noise,
the PCA reduction, prompt-embedding files and the command line."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import REPO_ROOT
from stepscope_export import ManifestError, check_file, stepscope_noise, write_embeds, write_trajectory
from stepscope_export.check import TrajectoryFileError
from stepscope_export.cli import main as cli_main
from stepscope_export.cli import parse_capture
from stepscope_export.names import parse_name
from stepscope_export.prompts import save_prompt_embeds
from stepscope_export.reduce import pca3


def small_manifest() -> dict:
    """A valid manifest: 2 Euler steps, latents [2, 1, 2, 2], one capture kind at layer 0."""
    return {
        "format_version": 2,
        "created_by": "stepscope_export test",
        "model": {"source": "test", "config": {}, "dtype": "f32"},
        "conditioning": {
            "prompt": None,
            "prompt_embeddings": "test",
            "guidance_scale": 1.0,
            "negative_prompt": False,
            "condition_frame": False,
            "task": None,
        },
        "schedule": {"scheduler": "euler", "steps": 2, "shift": 3.0, "sigmas": [1.0, 0.5, 0.0], "timesteps": [1000.0, 500.0]},
        "latent_shape": [2, 1, 2, 2],
        "patch_size": [1, 1, 2],
        "step_tensors": ["latents", "velocity", "x0"],
        "seeds": [{"noise": {"rng_seed": 1}, "forked_from": None, "steps": [0, 1], "capture_steps": [1], "final_latents": True}],
        "captures": {"layers": [0], "kinds": ["self_attn"], "query_tokens": [1]},
    }


def small_tensors() -> dict[str, torch.Tensor]:
    tensors = {f"s0/k{k}/{kind}": torch.full((2, 1, 2, 2), float(k)) for k in (0, 1) for kind in ("latents", "velocity", "x0")}
    tensors["s0/final/latents"] = torch.zeros(2, 1, 2, 2)
    tensors["s0/k1/layer0/self_attn"] = torch.full((3, 1, 2), 0.5)
    return tensors


def video_manifest() -> dict:
    """`small_manifest` with step 1 of seed 0 decoded to a [3, 1, 4, 4] video."""
    manifest = small_manifest()
    manifest["seeds"][0]["video_steps"] = [1]
    manifest["video"] = {"shape": [3, 1, 4, 4], "decoder": "AutoencoderKLWan"}
    return manifest


def video_tensors() -> dict[str, torch.Tensor]:
    return {**small_tensors(), "s0/k1/video": torch.linspace(-1, 1, 48).reshape(3, 1, 4, 4)}


def test_names_parse_and_print_back():
    for text in ("s0/k3/x0", "s12/k0/velocity", "s1/final/latents", "s2/k10/layer7/cross_attn", "s3/k4/video"):
        assert str(parse_name(text)) == text
    assert parse_name("s3/k4/video").is_video and not parse_name("s3/k4/video").is_capture
    bad_names = (
        "s0", "s01/k1/latents", "s0/k1/noise", "s0/final/x0", "s0/k1/layer2/attention", "s0/k1/layer02/pca3",
        "s0/final/video", "s0/k1/layer0/video",
    )
    for bad in bad_names:
        with pytest.raises(ValueError):
            parse_name(bad)
    names = ["s1/k0/latents", "s0/final/latents", "s0/k10/x0", "s0/k2/layer0/pca3", "s0/k2/video", "s0/k2/x0"]
    ordered = sorted(names, key=lambda name: parse_name(name).order_key())
    assert ordered == ["s0/k2/x0", "s0/k2/video", "s0/k2/layer0/pca3", "s0/k10/x0", "s0/final/latents", "s1/k0/latents"]


def test_the_writers_bytes_are_pinned(tmp_path):
    # The SHA-256 of this file as the format-version-2 writer writes it (the version-1 writer's,
    # before checksums, was d1b4cc58...): a change here is a change of the format.
    path = tmp_path / "ok.safetensors"
    write_trajectory(path, small_manifest(), small_tensors(), storage={"s0/k1/velocity": "bf16"})
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "97b19b6f40160ae089b8cda0415ce9ff93364aba23dcfd664686d0280e05866c"
    )


def test_videos_are_written_after_their_step_tensors_and_read_back(tmp_path):
    path = tmp_path / "video.safetensors"
    write_trajectory(path, video_manifest(), video_tensors())
    assert check_file(path) == video_manifest()
    with safe_open(path, framework="pt") as file:
        assert torch.equal(file.get_tensor("s0/k1/video"), video_tensors()["s0/k1/video"])
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    header.pop("__metadata__")
    names = sorted(header, key=lambda name: header[name]["data_offsets"][0])
    assert names == [
        "s0/k0/latents", "s0/k0/velocity", "s0/k0/x0",
        "s0/k1/latents", "s0/k1/velocity", "s0/k1/x0", "s0/k1/video", "s0/k1/layer0/self_attn",
        "s0/final/latents",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, t: m.pop("video"), "has no `video`"),
        (lambda m, t: m["seeds"][0].update(video_steps=[0, 1]), "promises tensor `s0/k0/video`, which is missing"),
        (lambda m, t: m["seeds"][0].update(steps=[1], video_steps=[0]), "video_steps` holds step 0, which is not one of its recorded"),
        (lambda m, t: m["seeds"][0].update(video_steps=[2]), "video_steps` holds step 2, which is not one of its recorded"),
        (lambda m, t: m["seeds"][0].update(video_steps=[1, 0]), "strictly increasing"),
        (lambda m, t: m["seeds"][0].update(video_steps=[1, 1]), "strictly increasing"),
        (lambda m, t: m["seeds"][0].update(video_steps=[-1]), "non-negative integer"),
        (lambda m, t: m["seeds"][0].update(video_step=[1]), "unknown field"),
        (lambda m, t: m["video"].update(shape=[3, 4, 4]), r"\[3, F_v, H_v, W_v\]"),
        (lambda m, t: m["video"].update(shape=[4, 1, 4, 4]), r"\[3, F_v, H_v, W_v\]"),
        (lambda m, t: m["video"].update(shape=[3, 0, 4, 4]), "zero dimension"),
        (lambda m, t: m["video"].update(fps=16), "unknown field"),
        (lambda m, t: m["video"].pop("decoder"), "lacks the field"),
        (lambda m, t: m["video"].update(decoder=None), "must be a string"),
        (lambda m, t: m.update(videos={}), "unknown field"),
        (lambda m, t: t.pop("s0/k1/video"), "promises tensor `s0/k1/video`, which is missing"),
        (lambda m, t: t.update({"s0/k0/video": torch.zeros(3, 1, 4, 4)}), "not one the manifest promises"),
        (lambda m, t: t.update({"s0/k1/video": torch.zeros(3, 1, 4, 5)}), r"implies \[3, 1, 4, 4\]"),
    ],
)
def test_the_writer_refuses_videos_that_break_the_format(tmp_path, change, message):
    path = tmp_path / "run.safetensors"
    manifest, tensors = video_manifest(), video_tensors()
    change(manifest, tensors)
    with pytest.raises(ManifestError, match=message):
        write_trajectory(path, manifest, tensors)
    assert not path.exists()


def test_the_writer_writes_a_file_the_checker_and_safetensors_accept(tmp_path):
    path = tmp_path / "ok.safetensors"
    write_trajectory(path, small_manifest(), small_tensors(), storage={"s0/k1/velocity": "bf16"})
    assert check_file(path) == small_manifest()
    with safe_open(path, framework="pt") as file:
        assert file.get_tensor("s0/k1/velocity").dtype == torch.bfloat16
        assert json.loads(file.metadata()["stepscope.manifest"]) == small_manifest()
    assert [p.name for p in tmp_path.iterdir()] == ["ok.safetensors"], "no temporary file is left"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, t: m.update(format_version=3), "format_version"),
        (lambda m, t: m.update(extra=1), "unknown field"),
        (lambda m, t: m["schedule"].pop("shift"), "lacks the field"),
        (lambda m, t: m["schedule"].update(sigmas=[1.0, 0.0]), r"steps \+ 1"),
        (lambda m, t: m["schedule"].update(shift=float("nan")), "finite"),
        (lambda m, t: m.update(patch_size=[1, 1, 3]), "does not divide"),
        (lambda m, t: m["seeds"][0].update(steps=[1, 0]), "strictly increasing"),
        (lambda m, t: m["seeds"][0].update(steps=[0]), "not one of its recorded"),
        (lambda m, t: m["captures"].update(query_tokens=[]), "query_tokens"),
        (lambda m, t: m["captures"].update(query_tokens=[2]), "token grid has 2 tokens"),
        (lambda m, t: t.pop("s0/k0/x0"), "missing"),
        (lambda m, t: t.update({"s0/k0/layer0/self_attn": torch.zeros(3, 1, 2)}), "not one the manifest promises"),
        (lambda m, t: t.update({"s0/k1/layer0/self_attn": torch.zeros(3, 2, 2)}), "shape"),
        (lambda m, t: t.update({"s0/final/latents": torch.zeros(2, 1, 2, 2, dtype=torch.int64)}), "floating-point"),
    ],
)
def test_the_writer_refuses_what_breaks_the_format_and_keeps_the_old_file(tmp_path, change, message):
    path = tmp_path / "run.safetensors"
    path.write_bytes(b"previous contents")
    manifest, tensors = copy.deepcopy(small_manifest()), small_tensors()
    change(manifest, tensors)
    with pytest.raises(ManifestError, match=message):
        write_trajectory(path, manifest, tensors)
    assert path.read_bytes() == b"previous contents"
    assert len(list(tmp_path.iterdir())) == 1


def test_the_checker_names_a_broken_container(tmp_path):
    path = tmp_path / "run.safetensors"
    write_trajectory(path, small_manifest(), small_tensors())
    path.write_bytes(path.read_bytes() + b"\0\0\0\0")
    with pytest.raises(TrajectoryFileError, match="run.safetensors: the tensors end at byte"):
        check_file(path)


def test_seeded_noise_is_the_engines_bit_for_bit():
    fixture = load_file(REPO_ROOT / "tests" / "fixtures" / "noise" / "seed7_c2f3h4w5.safetensors")["noise"]
    assert torch.equal(stepscope_noise(7, [2, 3, 4, 5]), fixture)


def test_pca3_finds_the_principal_components_with_the_engines_signs():
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([6.0, 3.0, 1.5] + [0.1] * 9)
    tokens = torch.randn(40, 12, generator=generator) * scales
    got = pca3(tokens, (2, 4, 5)).reshape(3, 40).double()
    centred = (tokens - tokens.mean(0)).double()
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    for row in range(3):
        direction = vh[row] * torch.sign(vh[row][vh[row].abs().argmax()])  # largest loading positive
        assert (got[row] - centred @ direction).abs().max() < 1e-4
    few = pca3(torch.randn(4, 2, generator=generator), (1, 2, 2))  # D < 3: a zero third row
    assert torch.equal(few[2], torch.zeros(1, 2, 2))


class _StubPipe:
    """Just enough of a Wan pipeline for the prompt helpers: `encode_prompt` and its parts."""

    text_encoder = torch.nn.Identity()
    tokenizer = object()

    def encode_prompt(self, prompt, negative_prompt, do_classifier_free_guidance, num_videos_per_prompt, max_sequence_length, device):
        seed = len(prompt)
        positive = torch.randn(1, max_sequence_length, 8, generator=torch.Generator().manual_seed(seed))
        negative = -positive if do_classifier_free_guidance else None
        return positive.bfloat16(), negative


def test_prompt_embeddings_are_saved_as_stepscope_record_reads_them(tmp_path):
    paths = save_prompt_embeds(
        _StubPipe(), "a cat", tmp_path / "p.safetensors", "blurry", tmp_path / "n.safetensors", max_sequence_length=6
    )
    assert paths == [tmp_path / "p.safetensors", tmp_path / "n.safetensors"]
    for path in paths:
        with safe_open(path, framework="pt") as file:
            assert list(file.keys()) == ["prompt_embeds"]
            embeds = file.get_tensor("prompt_embeds")
            assert embeds.dtype == torch.float32 and list(embeds.shape) == [1, 6, 8]
            assert file.metadata()["max_sequence_length"] == "6"
    with pytest.raises(ValueError, match="both"):
        save_prompt_embeds(_StubPipe(), "a cat", tmp_path / "p.safetensors", "blurry")
    with pytest.raises(ValueError, match=r"\[1, L, text_dim\]"):
        write_embeds(tmp_path / "x.safetensors", torch.zeros(2, 3, 4))


def test_the_command_line_parses_captures_and_checks_files(tmp_path, capsys):
    request = parse_capture("decoded,token_norm@all;self_attn@3,5:q=0,17", num_layers=6)
    assert request.layers == [0, 1, 2, 3, 4, 5] and request.query_tokens == [0, 17]
    assert request.normalised(6).kinds == ["decoded", "token_norm", "self_attn"]
    with pytest.raises(ValueError, match="@LAYERS"):
        parse_capture("decoded", num_layers=2)
    path = tmp_path / "run.safetensors"
    write_trajectory(path, small_manifest(), small_tensors())
    assert cli_main(["check", str(path)]) == 0
    assert "a valid trajectory" in capsys.readouterr().out
    Path(path).write_bytes(b"\0" * 7)
    assert cli_main(["check", str(path)]) == 1
