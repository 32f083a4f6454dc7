//! The `stepscope` binary end to end: record runs from a tiny diffusers model, read them back,
//! and refuse bad input with one clear message and a non-zero exit.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
mod pipeline_folders;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};
use pipeline_folders::{copy_folder, reference_run, repo_path, ti2v_folder};
use stepscope_engine::trajectory::{CaptureKind, TrajectoryReader};

fn model_dir() -> PathBuf {
    repo_path("tests/fixtures/parity/t2v_hd20")
}

fn stepscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepscope")).args(args).output().unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes the prompt, negative prompt and noise of the diffusers reference run as input files.
fn reference_inputs(dir: &Path) -> HashMap<String, Tensor> {
    let reference = candle_core::safetensors::load(
        repo_path("tests/fixtures/parity/sample_t2v_unipc.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let save =
        |name: &str, file: &str, tensor: &Tensor| tensor.save_safetensors(name, dir.join(file)).unwrap();
    save("prompt_embeds", "prompt.safetensors", &reference["prompt_embeds"]);
    save("prompt_embeds", "negative.safetensors", &reference["negative_prompt_embeds"]);
    save("noise", "noise.safetensors", &reference["noise"].squeeze(0).unwrap());
    reference
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn record_reproduces_the_diffusers_run_and_info_describes_it() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference_inputs(dir.path());
    let out = dir.path().join("run.safetensors");
    let output = stepscope(&[
        "record",
        "--model",
        arg(&model_dir()),
        "--prompt-embeds",
        arg(&dir.path().join("prompt.safetensors")),
        "--negative-prompt-embeds",
        arg(&dir.path().join("negative.safetensors")),
        "--guidance",
        "4",
        "--noise",
        arg(&dir.path().join("noise.safetensors")),
        "--steps",
        "6",
        "--shift",
        "3",
        "--scheduler",
        "unipc",
        "--capture",
        "decoded,token_norm@0,1;self_attn,cross_attn@1:q=0,5",
        "--quiet",
        "-o",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));

    let reader = TrajectoryReader::open(&out).unwrap();
    // Tolerance 1e-4 absolute in f32, as for the engine's parity tests.
    let final_latents = reader.final_latents(0).unwrap();
    let err = max_abs_diff(&final_latents, &reference["final/latents"].squeeze(0).unwrap());
    assert!(err < 1e-4, "final latents differ from diffusers by {err}");
    for step_idx in 0..6 {
        let x0 = reader.x0(0, step_idx).unwrap();
        let theirs = reference[&format!("k{step_idx}/x0")].squeeze(0).unwrap();
        assert!(max_abs_diff(&x0, &theirs) < 1e-4);
    }
    let attention = reader.capture(0, 3, 1, CaptureKind::SelfAttn).unwrap();
    assert_eq!(attention.dims(), &[2, 2, 48]);

    let info = stepscope(&["info", arg(&out)]);
    let text = String::from_utf8(info.stdout).unwrap();
    assert!(text.contains("UniPC, 6 steps, shift 3"), "{text}");
    assert!(text.contains("guidance scale 4"), "{text}");
    let json = stepscope(&["info", "--json", arg(&out)]);
    let manifest: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(manifest["schedule"]["steps"], 6);
    assert_eq!(manifest["captures"]["query_tokens"], serde_json::json!([0, 5]));
}

#[test]
fn several_seeds_make_several_runs_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    reference_inputs(dir.path());
    let out = dir.path().join("seeds.safetensors");
    let output = stepscope(&[
        "record",
        "--model",
        arg(&model_dir()),
        "--prompt-embeds",
        arg(&dir.path().join("prompt.safetensors")),
        "--seed",
        "1",
        "2",
        "--size",
        "3x8x8",
        "--steps",
        "4",
        "--shift",
        "5",
        "--scheduler",
        "euler",
        "--store",
        "f16",
        "--quiet",
        "-o",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let reader = TrajectoryReader::open(&out).unwrap();
    assert_eq!(reader.manifest().seeds.len(), 2);
    let a = reader.latents(0, 0).unwrap();
    let b = reader.latents(1, 0).unwrap();
    assert!(max_abs_diff(&a, &b) > 0.1, "different seeds give different noise");
    // Step k stores x_t, v and x0 = x_t - sigma_k v (to f16 storage precision).
    let sigma = reader.manifest().schedule.sigmas[2];
    let (x_t, v, x0) =
        (reader.latents(1, 2).unwrap(), reader.velocity(1, 2).unwrap(), reader.x0(1, 2).unwrap());
    let implied = (x_t - (v * sigma).unwrap()).unwrap();
    assert!(max_abs_diff(&implied, &x0) < 1e-2);
}

/// Runs `record` with the base arguments plus `extra`, expecting one clear failure.
fn record_fails(dir: &Path, extra: &[&str], needle: &str) {
    let mut args = vec!["record", "--steps", "2", "--quiet", "-o"];
    let out = dir.join("out.safetensors");
    args.push(arg(&out));
    args.extend_from_slice(extra);
    if !extra.contains(&"--shift") {
        args.extend_from_slice(&["--shift", "3"]);
    }
    let output = stepscope(&args);
    let stderr = stderr_of(&output);
    assert!(!output.status.success(), "{extra:?} should fail");
    assert!(stderr.contains(needle), "{extra:?}: expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{extra:?} panicked: {stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "one error message: {stderr}");
    assert_each_clause_once(&stderr);
}

/// An error message says each of its `: `-separated clauses once (a cause or a path repeated,
/// as in `Is a directory (os error 21): Is a directory (os error 21)`, fails).
fn assert_each_clause_once(message: &str) {
    let clauses: Vec<&str> = message.trim().trim_start_matches("error: ").split(": ").collect();
    for (idx, clause) in clauses.iter().enumerate() {
        assert!(!clauses[idx + 1..].contains(clause), "`{clause}` said twice in: {message}");
    }
}

/// Writes the malformed input files the bad-input test feeds to `record`.
fn write_bad_inputs(dir: &Path) {
    let zeros = |shape: &[usize]| Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap();
    zeros(&[4, 3]).save_safetensors("noise", dir.join("rank2.safetensors")).unwrap();
    let nan = Tensor::new(&[f32::NAN; 4], &Device::Cpu).unwrap().reshape((1, 1, 2, 2)).unwrap();
    nan.save_safetensors("noise", dir.join("nan.safetensors")).unwrap();
    std::fs::write(dir.join("garbage.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
        .unwrap();
    zeros(&[1, 7, 99]).save_safetensors("prompt_embeds", dir.join("wide.safetensors")).unwrap();
}

#[test]
fn bad_inputs_give_one_clear_error_each() {
    let dir = tempfile::tempdir().unwrap();
    reference_inputs(dir.path());
    write_bad_inputs(dir.path());
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let model = model_dir().to_str().unwrap().to_owned();
    // (model, prompt file, further arguments, expected words)
    let seeded = "--seed 1 --size 3x8x8";
    let cases = [
        ("/nonexistent".to_owned(), p("prompt.safetensors"), seeded, "is not a directory"),
        (model.clone(), p("missing.safetensors"), seeded, "cannot open"),
        (model.clone(), p("noise.safetensors"), seeded, "no tensor `prompt_embeds`"),
        (model.clone(), p("garbage.safetensors"), seeded, "not a valid safetensors"),
        (model.clone(), p("wide.safetensors"), seeded, "expected [1, L, 16]"),
        (model.clone(), p("prompt.safetensors"), "--noise RANK2", "expected 4 dimensions"),
        (model.clone(), p("prompt.safetensors"), "--noise NAN", "NaN"),
        (model.clone(), p("prompt.safetensors"), "--seed 1", "--size FxHxW is required"),
        (model.clone(), p("prompt.safetensors"), "--seed 1 --size 3x7x8", "not a positive multiple"),
        (
            model.clone(),
            p("prompt.safetensors"),
            "--seed 1 --size 3x8x8 --capture decoded@9",
            "layer 9 does not exist",
        ),
        (
            model.clone(),
            p("prompt.safetensors"),
            "--seed 1 --size 3x8x8 --capture bogus@all",
            "unknown capture kind",
        ),
        (
            model.clone(),
            p("prompt.safetensors"),
            "--seed 1 --size 3x8x8 --shift -1",
            "shift must be finite and positive",
        ),
        (
            model.clone(),
            p("prompt.safetensors"),
            "--seed 1 --size 3x8x8 --guidance NaN",
            "guidance scale NaN",
        ),
        (
            model.clone(),
            p("prompt.safetensors"),
            "--seed 1 --size 3x8x8 --guidance 5",
            "needs negative prompt",
        ),
    ];
    for (model, prompt, further, needle) in &cases {
        let further = further.replace("RANK2", &p("rank2.safetensors")).replace("NAN", &p("nan.safetensors"));
        let mut extra = vec!["--model", model.as_str(), "--prompt-embeds", prompt.as_str()];
        extra.extend(further.split(' '));
        record_fails(dir.path(), &extra, needle);
    }
}

#[test]
fn a_failed_record_leaves_an_existing_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    reference_inputs(dir.path());
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"precious").unwrap();
    let output = stepscope(&[
        "record",
        "--model",
        arg(&model_dir()),
        "--prompt-embeds",
        arg(&dir.path().join("prompt.safetensors")),
        "--seed",
        "1",
        "--size",
        "3x8x8",
        "--steps",
        "2",
        "--shift",
        "3",
        "--capture",
        "decoded@7",
        "-o",
        arg(&out),
    ]);
    assert!(!output.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn info_on_a_broken_file_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    std::fs::write(&path, [0xff; 32]).unwrap();
    let output = stepscope(&["info", arg(&path)]);
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(stderr.starts_with("error: ") && stderr.contains("broken.safetensors"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn record_with_a_condition_latent_reproduces_the_ti2v_run() {
    let dir = tempfile::tempdir().unwrap();
    let reference = candle_core::safetensors::load(
        repo_path("tests/fixtures/parity/sample_ti2v_euler.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let save = |name: &str, tensor: &Tensor| {
        let path = dir.path().join(format!("{name}.safetensors"));
        tensor.save_safetensors(name, &path).unwrap();
        path
    };
    let prompt = save("prompt_embeds", &reference["prompt_embeds"]);
    let noise = save("noise", &reference["noise"].squeeze(0).unwrap());
    let condition = save("condition_latent", &reference["condition"].squeeze(0).unwrap());
    let out = dir.path().join("ti2v.safetensors");
    let model = repo_path("tests/fixtures/parity/ti2v_hd24");
    let output = stepscope(&[
        "record",
        "--model",
        arg(&model),
        "--prompt-embeds",
        arg(&prompt),
        "--noise",
        arg(&noise),
        "--condition-latent",
        arg(&condition),
        "--steps",
        "5",
        "--shift",
        "5",
        "--scheduler",
        "euler",
        "--quiet",
        "-o",
        arg(&out),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let reader = TrajectoryReader::open(&out).unwrap();
    assert!(reader.manifest().conditioning.condition_frame);
    // Tolerance 1e-4 absolute in f32.
    let err =
        max_abs_diff(&reader.final_latents(0).unwrap(), &reference["final/latents"].squeeze(0).unwrap());
    assert!(err < 1e-4, "final latents differ from diffusers by {err}");
}

/// `solve` records the built-in model on a maze for several seeds; `export` draws the run as a
/// contact sheet (steps x frames) and a GIF, checked pixel by pixel against the recorded `x0_hat`.
#[test]
fn solve_records_a_task_run_and_export_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("maze.safetensors");
    let solved = stepscope(&[
        "solve",
        "--cells",
        "4",
        "--instance",
        "3",
        "--seed",
        "7",
        "--seeds",
        "2",
        "--steps",
        "3",
        "--capture",
        "",
        "-o",
        arg(&run),
        "--quiet",
    ]);
    assert!(solved.status.success(), "{}", stderr_of(&solved));
    let reader = TrajectoryReader::open(&run).unwrap();
    let manifest = reader.manifest();
    assert_eq!(manifest.seeds.len(), 2);
    assert_eq!(manifest.seeds[1].steps, [0, 1, 2]);
    let task = manifest.conditioning.task.as_ref().unwrap();
    assert_eq!((task.name.as_str(), task.seed), ("maze", 3));
    // A 4x4 maze is 10 x 10 pixels; 5 frames.
    assert_eq!(manifest.latent_shape, [3, 5, 10, 10]);

    let (sheet, gif) = (dir.path().join("sheet.png"), dir.path().join("sweep.gif"));
    // Seed 1's steps 2 and 0 at 3 output pixels per latent pixel, with `rest` added.
    let export = |rest: &[&str]| {
        stepscope(
            &[&["export", arg(&run), "--seed", "1", "--steps", "2,0", "--scale", "3"][..], rest].concat(),
        )
    };
    let exported = export(&["--sheet", arg(&sheet), "--bare", "--gif", arg(&gif)]);
    assert!(exported.status.success(), "{}", stderr_of(&exported));
    let picture = image::open(&sheet).unwrap().to_rgba8();
    // 5 frames of 30 px with 2 px gaps across, 2 steps down.
    assert_eq!(picture.dimensions(), (5 * 30 + 4 * 2, 2 * 30 + 2));
    // Row 0 is step 2: frame 4's pixel (x 6, y 5) is x0_hat there, as (x + 1) / 2 in 8 bits.
    let x0 = reader.load(&stepscope_engine::trajectory::TensorName::x0(1, 2)).unwrap();
    let x0 = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let at = |c: usize| x0[((c * 5 + 4) * 10 + 5) * 10 + 6];
    let pixel = picture.get_pixel(4 * 32 + 6 * 3 + 1, 5 * 3 + 1);
    for c in 0..3 {
        let expected = f32::midpoint(at(c), 1.0).clamp(0.0, 1.0) * 255.0;
        assert!((f32::from(pixel[c]) - expected).abs() <= 1.0, "channel {c}: {} vs {expected}", pixel[c]);
    }
    assert_eq!(&std::fs::read(&gif).unwrap()[..6], b"GIF89a");

    // Without --bare, the same sheet as a figure: the sheet itself, pixel for pixel, among its
    // labels (a title above, a step and sigma left of each row, a frame above each column).
    let figure_path = dir.path().join("figure.png");
    let as_figure = export(&["--sheet", arg(&figure_path)]);
    assert!(as_figure.status.success(), "{}", stderr_of(&as_figure));
    assert_sheet_among_labels(&picture, &image::open(&figure_path).unwrap().to_rgba8());

    let refused = stepscope(&["export", arg(&run), "--seed", "5", "--sheet", arg(&sheet)]);
    assert!(!refused.status.success());
    assert!(stderr_of(&refused).contains("there is no seed 5"), "{}", stderr_of(&refused));

    // One frame over every step: a single column of frame 4, the same pixels as above.
    let column = dir.path().join("column.png");
    let one_frame = stepscope(&[
        "export",
        arg(&run),
        "--seed",
        "1",
        "--frame",
        "4",
        "--scale",
        "3",
        "--sheet",
        arg(&column),
        "--bare",
    ]);
    assert!(one_frame.status.success(), "{}", stderr_of(&one_frame));
    let column = image::open(&column).unwrap().to_rgba8();
    assert_eq!(column.dimensions(), (30, 3 * 30 + 2 * 2));
    assert_eq!(column.get_pixel(6 * 3 + 1, 2 * 32 + 5 * 3 + 1), pixel);
    let past = stepscope(&["export", arg(&run), "--frame", "5", "--sheet", arg(&sheet)]);
    assert!(stderr_of(&past).contains("the video has 5 frames; there is no frame 5"), "{}", stderr_of(&past));
}

/// `figure` holds `sheet` pixel for pixel, with ink left of its first row and above its first
/// column (the labels).
fn assert_sheet_among_labels(sheet: &image::RgbaImage, figure: &image::RgbaImage) {
    let picture = sheet;
    assert!(figure.width() > picture.width() && figure.height() > picture.height());
    let contains_sheet_at = |x: u32, y: u32| {
        picture
            .enumerate_pixels()
            .all(|(px, py, pixel)| figure.get_pixel_checked(x + px, y + py) == Some(pixel))
    };
    let found = (0..figure.height() - picture.height())
        .flat_map(|y| (0..figure.width() - picture.width()).map(move |x| (x, y)))
        .find(|&(x, y)| contains_sheet_at(x, y));
    let (left, top) = found.expect("the sheet is in the figure, unchanged");
    assert!(left > 30 && top > 30, "room for the labels: {left}, {top}");
    let inked = |x0: u32, y0: u32, w: u32, h: u32| {
        (y0..y0 + h).any(|y| (x0..x0 + w).any(|x| figure.get_pixel(x, y)[0] < 128))
    };
    assert!(inked(0, top, left, 30), "step 2's label left of the first row");
    assert!(inked(left, top - 20, 30, 18), "frame 0's label above the first column");
}

/// Real sizes from the configs alone (`tests/fixtures/wan21/*/config.json`: the shapes of
/// Wan2.1 T2V 1.3B and 14B), and a record that cannot fit is refused before loading anything.
#[test]
fn memory_states_what_a_real_wan_needs_and_record_refuses_what_will_not_fit() {
    let config = |name: &str| repo_path(&format!("tests/fixtures/wan21/{name}/config.json"));
    let small = stepscope(&["memory", "--config", arg(&config("t2v_1_3b"))]);
    assert!(small.status.success(), "{}", stderr_of(&small));
    let text = String::from_utf8_lossy(&small.stdout);
    assert!(text.contains("parameters: 1418996800"), "{text}");
    assert!(text.contains("weights in BF16: 2.6 GiB") && text.contains("32760 tokens"), "{text}");
    let large = stepscope(&["memory", "--config", arg(&config("t2v_14b")), "--dtype", "f32"]);
    let text = String::from_utf8_lossy(&large.stdout);
    assert!(text.contains("parameters: 14288491584") && text.contains("weights in F32: 53.2 GiB"), "{text}");

    // The 14B shape at an absurd size: no machine has the memory, and nothing is loaded (the
    // weights file is empty). Free memory is known on Linux only.
    if !cfg!(target_os = "linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(config("t2v_14b"), dir.path().join("config.json")).unwrap();
    std::fs::write(dir.path().join("diffusion_pytorch_model.safetensors"), b"").unwrap();
    reference_inputs(dir.path());
    let refused = stepscope(&[
        "record",
        "--model",
        arg(dir.path()),
        "--prompt-embeds",
        arg(&dir.path().join("prompt.safetensors")),
        "--seed",
        "0",
        "--size",
        "21x900x1600",
        "--steps",
        "1",
        "--shift",
        "3",
        "-o",
        arg(&dir.path().join("out.safetensors")),
    ]);
    assert!(!refused.status.success());
    let message = stderr_of(&refused);
    assert!(message.contains("the run needs about") && message.contains("is free"), "{message}");

    // A whole pipeline folder (configs only) with the 14B transformer: refused before its text
    // encoder loads, with the pipeline's peak.
    let pipeline = dir.path().join("pipeline");
    let tiny = repo_path("tests/fixtures/wan_pipeline_tiny");
    for (part, file) in [
        ("", "model_index.json"),
        ("scheduler", "scheduler_config.json"),
        ("tokenizer", "tokenizer.json"),
        ("vae", "config.json"),
    ] {
        std::fs::create_dir_all(pipeline.join(part)).unwrap();
        std::fs::copy(tiny.join(part).join(file), pipeline.join(part).join(file)).unwrap();
    }
    std::fs::create_dir_all(pipeline.join("transformer")).unwrap();
    std::fs::copy(config("t2v_14b"), pipeline.join("transformer/config.json")).unwrap();
    std::fs::create_dir_all(pipeline.join("text_encoder")).unwrap();
    let mut encoder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("text_encoder/config.json")).unwrap())
            .unwrap();
    encoder["d_model"] = 4096.into();
    std::fs::write(pipeline.join("text_encoder/config.json"), encoder.to_string()).unwrap();
    let refused = stepscope(&[
        "record",
        "--pipeline",
        arg(&pipeline),
        "--prompt",
        "a ball",
        "--seed",
        "0",
        "--size",
        "21x900x1600",
        "--steps",
        "1",
        "-o",
        arg(&dir.path().join("out.safetensors")),
    ]);
    assert!(!refused.status.success());
    let message = stderr_of(&refused);
    assert!(message.contains("at its peak (text encoder") && message.contains("is free"), "{message}");
}

#[test]
fn errors_say_their_cause_and_path_once_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, [0xff; 32]).unwrap();
    let folder = arg(dir.path());
    let (garbage, png) = (arg(&garbage), dir.path().join("sheet.png"));
    // (arguments, words the message must hold)
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["info", folder], "it is a folder, not a trajectory file"),
        (vec!["info", garbage], "garbage.safetensors"),
        (vec!["export", folder, "--sheet", arg(&png)], "it is a folder"),
        (vec!["export", garbage, "--sheet", arg(&png)], "garbage.safetensors"),
        (vec!["memory", "--config", folder], "pass a model folder as --model"),
    ];
    for (args, needle) in &cases {
        let output = stepscope(args);
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr.contains(needle), "{args:?}: expected `{needle}` in: {stderr}");
        assert_eq!(stderr.matches("error:").count(), 1, "one error message: {stderr}");
        assert_each_clause_once(&stderr);
        let path_mentions = stderr.matches(dir.path().to_str().unwrap()).count();
        assert_eq!(path_mentions, 1, "the path is named once: {stderr}");
    }
}

#[test]
fn probe_takes_png_alone_and_wants_one_output() {
    let output = stepscope(&["probe", "--instances", "0"]);
    assert!(stderr_of(&output).contains("--output"), "{}", stderr_of(&output));
    // With --png alone, clap accepts the arguments (the run then refuses 0 instances).
    let output = stepscope(&["probe", "--png", "/nonexistent/heatmap.png", "--instances", "0"]);
    assert!(!stderr_of(&output).contains("required"), "{}", stderr_of(&output));
}

/// Checks seed 0's `x0_k` of `steps` steps and its final latents against a reference run's
/// tensors within 1e-4, giving the largest x0 error and the final latents' error.
fn assert_run_matches(
    reader: &TrajectoryReader,
    expected: &HashMap<String, Tensor>,
    steps: usize,
) -> (f32, f32) {
    let mut worst = 0.0_f32;
    for step in 0..steps {
        let error = max_abs_diff(&reader.x0(0, step).unwrap(), &expected[&format!("x0_{step}")]);
        assert!(error <= 1e-4, "step {step}: x0 differs from diffusers by {error}");
        worst = worst.max(error);
    }
    let error = max_abs_diff(&reader.final_latents(0).unwrap(), &expected["final"]);
    assert!(error <= 1e-4, "the final latents differ from diffusers by {error}");
    (worst, error)
}

/// Wan2.2 A14B's layout on the tiny pipeline (`tests/reference/wan_a14b_fixture.py`): a second
/// transformer and `boundary_ratio` 0.8 in `model_index.json`. With UniPC's timesteps 999, 900,
/// 750 and 500, steps 0 and 1 are the high-noise expert's and 2 and 3 the low-noise one's, and
/// every step's x0 and the final latents match diffusers' run within 1e-4.
#[test]
fn record_switches_experts_at_the_boundary_as_diffusers_does() {
    let base = repo_path("tests/fixtures/wan_pipeline_tiny");
    let a14b = repo_path("tests/fixtures/wan_pipeline_tiny_a14b");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("a14b");
    copy_folder(&base, &pipeline);
    copy_folder(&a14b, &pipeline);
    let expected_path = a14b.join("expected.safetensors");
    let (prompt, expected) = reference_run(&expected_path);
    let (noise, run) = (dir.path().join("noise.safetensors"), dir.path().join("run.safetensors"));
    expected["noise"].save_safetensors("noise", &noise).unwrap();
    let record = |pipeline: &Path| {
        Command::new(env!("CARGO_BIN_EXE_stepscope"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args(["record", "--pipeline", arg(pipeline), "--prompt", &prompt, "--max-text-len", "40"])
            .args(["--guidance", "3", "--noise", arg(&noise), "--steps", "4", "-o", arg(&run), "--quiet"])
            .output()
            .unwrap()
    };
    let recorded = record(&pipeline);
    assert!(recorded.status.success(), "{}", stderr_of(&recorded));
    let reader = TrajectoryReader::open(&run).unwrap();
    let (worst, error) = assert_run_matches(&reader, &expected, 4);
    println!("two experts: largest |x0 - diffusers| {worst:.1e}, final latents {error:.1e}");
    let memory = stepscope(&["memory", "--pipeline", arg(&pipeline), "--size", "3x4x6", "--text-len", "40"]);
    assert!(memory.status.success(), "{}", stderr_of(&memory));
    assert!(String::from_utf8_lossy(&memory.stdout).contains("transformer_2"), "both experts are counted");

    // The same folder with one transformer: the low-noise steps differ, so the test can fail.
    copy_folder(&base, &dir.path().join("single"));
    let single = record(&dir.path().join("single"));
    assert!(single.status.success(), "{}", stderr_of(&single));
    let reader = TrajectoryReader::open(&run).unwrap();
    assert!(
        max_abs_diff(&reader.x0(0, 1).unwrap(), &expected["x0_1"]) <= 1e-4,
        "step 1 is the first expert's"
    );
    let apart = max_abs_diff(&reader.x0(0, 3).unwrap(), &expected["x0_3"]);
    assert!(apart > 1e-2, "one transformer alone gives step 3 within {apart} of the two experts' run");
}

/// Wan2.2 TI2V from an image (`tests/reference/wan_ti2v_fixture.py`): a tiny
/// `WanImageToVideoPipeline` with `expand_timesteps` and the tiny Wan2.2 VAE (48 channels, 16x).
/// `record --pipeline DIR --image FILE` encodes the image with the VAE's encoder in Rust into the
/// clean first latent frame; every step's x0 on the frames the model generates (diffusers steps
/// the first frame's noise along unseen, so frame 0 is left out) and the final latents (the
/// image's latent on frame 0) match diffusers' run within 1e-4. A text-to-video folder refuses
/// the image, and the image-to-video folder refuses a run without one.
#[test]
fn record_runs_image_to_video_from_an_image_as_diffusers_does() {
    let base = repo_path("tests/fixtures/wan_pipeline_tiny");
    let ti2v = repo_path("tests/fixtures/wan_pipeline_tiny_ti2v");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = ti2v_folder(dir.path());
    let expected_path = ti2v.join("expected.safetensors");
    let (prompt, expected) = reference_run(&expected_path);
    let (noise, run) = (dir.path().join("noise.safetensors"), dir.path().join("run.safetensors"));
    expected["noise"].save_safetensors("noise", &noise).unwrap();
    let image = ti2v.join("image.png");
    let record = |pipeline: &Path, image: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepscope"));
        command
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args(["record", "--pipeline", arg(pipeline), "--prompt", &prompt, "--max-text-len", "40"])
            .args(["--guidance", "3", "--noise", arg(&noise), "--steps", "4", "-o", arg(&run), "--quiet"]);
        if let Some(image) = image {
            command.args(["--image", arg(image)]);
        }
        command.output().unwrap()
    };
    let recorded = record(&pipeline, Some(&image));
    assert!(recorded.status.success(), "{}", stderr_of(&recorded));
    let reader = TrajectoryReader::open(&run).unwrap();
    assert!(
        reader.manifest().conditioning.condition_frame,
        "the run is marked as conditioned on a first frame"
    );
    let generated = |x: &Tensor| x.narrow(1, 1, x.dim(1).unwrap() - 1).unwrap();
    let mut worst = 0.0_f32;
    for step in 0..4 {
        let error = max_abs_diff(
            &generated(&reader.x0(0, step).unwrap()),
            &generated(&expected[&format!("x0_{step}")]),
        );
        assert!(error <= 1e-4, "step {step}: x0 differs from diffusers by {error}");
        worst = worst.max(error);
    }
    let error = max_abs_diff(&reader.final_latents(0).unwrap(), &expected["final"]);
    assert!(error <= 1e-4, "the final latents differ from diffusers by {error}");
    println!("image to video: largest |x0 - diffusers| {worst:.1e}, final latents {error:.1e}");

    let refused = record(&pipeline, None);
    assert!(!refused.status.success());
    assert!(stderr_of(&refused).contains("give --image FILE"), "{}", stderr_of(&refused));
    let text_to_video = record(&base, Some(&image));
    assert!(!text_to_video.status.success());
    assert!(stderr_of(&text_to_video).contains("text-to-video pipeline"), "{}", stderr_of(&text_to_video));
}

/// A whole tiny Wan pipeline folder (`WanPipeline.save_pretrained` of a tiny random UMT5,
/// transformer and VAE; `tests/reference/wan_pipeline_fixture.py`) run from a typed prompt:
/// `record --pipeline DIR --prompt ...` encodes the prompt and the empty negative prompt with
/// the folder's text encoder, takes UniPC and the shift from its scheduler config, and every
/// step's x0 and the final latents match diffusers' run of the same call within 1e-4.
#[test]
fn record_runs_a_pipeline_folder_from_a_typed_prompt_as_diffusers_does() {
    let pipeline = repo_path("tests/fixtures/wan_pipeline_tiny");
    let expected_path = pipeline.join("expected.safetensors");
    let (prompt, expected) = reference_run(&expected_path);
    let dir = tempfile::tempdir().unwrap();
    let (noise, run) = (dir.path().join("noise.safetensors"), dir.path().join("run.safetensors"));
    expected["noise"].save_safetensors("noise", &noise).unwrap();
    // The prompt embeddings are kept in a cache of the test's own.
    let cache = dir.path().join("cache");
    let recorded = Command::new(env!("CARGO_BIN_EXE_stepscope"))
        .env("XDG_CACHE_HOME", &cache)
        .args([
            "record",
            "--pipeline",
            arg(&pipeline),
            "--prompt",
            &prompt,
            "--max-text-len",
            "40",
            "--guidance",
            "3",
            "--noise",
            arg(&noise),
            "--steps",
            "4",
            "--decode-steps",
            "3",
            "-o",
            arg(&run),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(recorded.status.success(), "{}", stderr_of(&recorded));
    let cached = std::fs::read_dir(cache.join("stepscope/prompt-embeddings")).unwrap().count();
    assert_eq!(cached, 2, "the prompt's and the empty negative prompt's embeddings are kept");
    let reader = TrajectoryReader::open(&run).unwrap();
    let manifest = reader.manifest();
    assert_eq!(manifest.schedule.scheduler.to_string(), "unipc");
    assert!((manifest.schedule.shift - 3.0).abs() < 1e-12, "the folder's flow_shift");
    assert_eq!(manifest.conditioning.prompt.as_deref(), Some(prompt.as_str()));
    assert!(
        manifest.conditioning.prompt_embeddings.starts_with("umt5:"),
        "{}",
        manifest.conditioning.prompt_embeddings
    );
    let (worst, error) = assert_run_matches(&reader, &expected, 4);
    println!("largest |x0 - diffusers| over the steps {worst:.1e}, final latents {error:.1e}");
    // The last step decoded by the folder's VAE in Rust, stored as the exporter stores videos
    // (f16): diffusers' decode of the same step within f16's rounding of [-1, 1] values.
    assert_eq!(manifest.seeds[0].video_steps, [3]);
    let video =
        reader.load(&stepscope_engine::trajectory::TensorName::Video { seed_idx: 0, step_idx: 3 }).unwrap();
    let decoded =
        candle_core::safetensors::load(pipeline.join("vae_expected.safetensors"), &Device::Cpu).unwrap();
    let error = max_abs_diff(&video, &decoded["video_3"]);
    assert!(error <= 1e-3, "the decoded video differs from diffusers by {error}");
    let sheet = dir.path().join("video.png");
    let exported = stepscope(&["export", arg(&run), "--view", "video", "--sheet", arg(&sheet)]);
    assert!(exported.status.success(), "{}", stderr_of(&exported));

    // The pipeline's memory, part by part, from configs and weight headers.
    let memory = stepscope(&["memory", "--pipeline", arg(&pipeline), "--size", "3x4x6", "--text-len", "40"]);
    assert!(memory.status.success(), "{}", stderr_of(&memory));
    let table = String::from_utf8_lossy(&memory.stdout);
    for part in ["text encoder", "transformer", "VAE decoder", "peak: about"] {
        assert!(table.contains(part), "{table}");
    }

    // A copy of the folder without its text encoder: the part is named.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(pipeline.join("model_index.json"), broken.join("model_index.json")).unwrap();
    for part in ["scheduler", "tokenizer", "transformer", "vae"] {
        std::fs::create_dir(broken.join(part)).unwrap();
        for entry in std::fs::read_dir(pipeline.join(part)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), broken.join(part).join(entry.file_name())).unwrap();
        }
    }
    let refused = stepscope(&[
        "record",
        "--pipeline",
        arg(&broken),
        "--prompt",
        "x",
        "--steps",
        "1",
        "--seed",
        "1",
        "--size",
        "1x2x2",
        "-o",
        arg(&run),
    ]);
    assert!(!refused.status.success());
    let message = stderr_of(&refused);
    assert!(message.contains("`text_encoder` has no config.json"), "{message}");
}
