//! `stepscope train` and `stepscope eval` end to end on a one-block model: a run writes its
//! checkpoint, model folder and logs, refuses to overwrite itself, resumes, and its model
//! evaluates.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
use std::path::Path;
use std::process::{Command, Output};

fn stepscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepscope")).args(args).output().unwrap()
}

fn check(output: &Output) {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
}

/// Flags of a model and data small enough for a step in milliseconds.
const TINY: [&str; 13] = [
    "--layers",
    "1",
    "--heads",
    "1",
    "--ffn-dim",
    "16",
    "--batch-size",
    "2",
    "--maze-sizes",
    "2-3",
    "--frames",
    "2",
    "--quiet",
];

fn train(out: &Path, steps: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--tasks", "maze", "--out", out.to_str().unwrap(), "--steps", steps];
    args.extend(TINY);
    args.extend(["--checkpoint-every", "2"]);
    args.extend(extra);
    stepscope(&args)
}

fn loss_steps(out: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    text.lines().skip(1).map(|line| line.split(',').next().unwrap().parse().unwrap()).collect()
}

#[test]
fn train_writes_a_loadable_model_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    check(&train(&out, "3", &["--eval-every", "3", "--eval-count", "1"]));
    for file in [
        "checkpoint.safetensors",
        "model/config.json",
        "model/diffusion_pytorch_model.safetensors",
        "model/prompts.safetensors",
        "eval.csv",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    assert_eq!(loss_steps(&out), [0, 1, 2]);

    let again = train(&out, "4", &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    check(&train(&out, "5", &["--resume", out.to_str().unwrap()]));
    assert_eq!(loss_steps(&out), [0, 1, 2, 3, 4]);

    let model = out.join("model");
    evaluates_held_out_instances(&model, &out);

    // Probes per (step, layer) on the same model: a result file and a PNG heatmap.
    let result = out.join("probe.safetensors");
    let png = out.join("probe.png");
    let probe = stepscope(&[
        "probe",
        "--model",
        model.to_str().unwrap(),
        "--size",
        "3",
        "--frames",
        "2",
        "--instances",
        "3",
        "--test-instances",
        "2",
        "--steps",
        "2",
        "-o",
        result.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--baseline-png",
        out.join("over_baseline.png").to_str().unwrap(),
        "--quiet",
    ]);
    check(&probe);
    assert!(probes_have_baselines(&result, &String::from_utf8_lossy(&probe.stdout)));
    assert_eq!(&std::fs::read(out.join("over_baseline.png")).unwrap()[..4], b"\x89PNG");
    let (record, probes) = stepscope_engine::analysis::read_probe_file(&result).unwrap();
    assert_eq!(
        (record.steps, record.layers, record.train_instances.len(), record.test_instances.len()),
        (2, 1, 3, 2)
    );
    assert!(record.train_instances.iter().all(|seed| !record.test_instances.contains(seed)));
    assert_eq!(record.split, "held-out");
    // Held-out puzzles, the test ones drawn after the training ones (seed spans, end exclusive).
    assert!(record.train_seeds[1] <= record.test_seeds[0], "{record:?}");
    assert!(probes.balanced_accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
    // Two test mazes of 4x4 tokens.
    assert_eq!(probes.test_tokens, 2 * 16);
    let table = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(table.lines().count(), 2 + 2, "{table}");
    let png_bytes = std::fs::read(&png).unwrap();
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");

    // The seed ensemble next to a single seed, on the same instances.
    let ensemble_args =
        ["ensemble", "--model", model.to_str().unwrap(), "--size", "3", "--frames", "2", "--instances", "2"];
    let ensemble = stepscope(
        &[&ensemble_args[..], &["--seeds", "2", "--merge-steps", "1", "--steps", "2", "--quiet"]].concat(),
    );
    check(&ensemble);
    let table = String::from_utf8_lossy(&ensemble.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("maze,3,held-out,latent-mean,2,2,1,2,3,"), "{table}");
    // The other pooling methods, with their model passes (x0-mean as latent-mean; best-of-k
    // K full runs) and the equal-compute single seed.
    for (method, passes) in [("x0-mean", "2,3,"), ("best-of-k", "2,4,")] {
        let run = stepscope(
            &[
                &ensemble_args[..],
                &["--seeds", "2", "--merge-steps", "1", "--steps", "2", "--method", method, "--quiet"],
            ]
            .concat(),
        );
        check(&run);
        let row = String::from_utf8_lossy(&run.stdout).lines().nth(1).unwrap_or_default().to_owned();
        assert!(row.starts_with(&format!("maze,3,held-out,{method},2,2,1,{passes}")), "{row}");
        assert_eq!(row.split(',').count(), 20, "{row}");
    }
    let refused = stepscope(&[&ensemble_args[..], &["--seeds", "1", "--steps", "2"]].concat());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("2 to 64 seeds"));
}

#[test]
fn generate_writes_the_instances_and_refuses_an_unknown_task() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mazes.safetensors");
    let args = ["generate", "--task", "maze", "--size", "3", "--frames", "2", "--count", "3", "-o"];
    check(&stepscope(&[&args[..], &[out.to_str().unwrap()]].concat()));
    let videos =
        candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap().remove("videos").unwrap();
    assert_eq!(videos.dims(), &[3, 3, 2, 8, 8]);

    let bad = stepscope(&["generate", "--task", "sudoku", "-o", out.to_str().unwrap()]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown task \"sudoku\""), "{stderr}");
    // The earlier file is untouched.
    assert_eq!(
        candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap()["videos"].dims()[0],
        3
    );
}

/// `eval` of the trained `model` on held-out 2x2 and 3x3 mazes at two tolerances, with the
/// per-step curve written under `out`.
fn evaluates_held_out_instances(model: &std::path::Path, out: &std::path::Path) {
    let eval = stepscope(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--task",
        "maze",
        "--size",
        "2,3",
        "--frames",
        "2",
        // 2x2 mazes have a single held-out puzzle.
        "--instances",
        "1",
        "--seed-offset",
        "5",
        "--seeds",
        "2",
        "--steps",
        "2",
        "--per-step",
        out.join("per_step.csv").to_str().unwrap(),
        "--also-tolerance",
        "0.3",
        "--quiet",
    ]);
    check(&eval);
    let table = String::from_utf8_lossy(&eval.stdout);
    assert_eq!(table.lines().count(), 3, "{table}");
    // task, size, frames, split, instances (then the first and last seed), noise seeds, samples.
    for (row, size) in table.lines().skip(1).zip([2, 3]) {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[..5], ["maze", &size.to_string(), "2", "held-out", "1"], "{table}");
        assert_eq!(fields[7..9], ["2", "2"], "{table}");
        assert!(fields[5].parse::<u64>().unwrap() >= 5, "held-out seeds start at --seed-offset: {table}");
    }
    // The per-step curve: a row per size, tolerance and step, two samples each, and a commit
    // summary per tolerance.
    let curve = std::fs::read_to_string(out.join("per_step.csv")).unwrap();
    let rows: Vec<&str> = curve.lines().collect();
    assert_eq!(rows.len(), 1 + 2 * 2 * 2, "{curve}");
    assert!(rows[0].starts_with("task,size,tolerance,step,samples,mean_x0_score"), "{curve}");
    assert!(rows[1].starts_with("maze,2,0.5,0,2,") && rows[4].starts_with("maze,2,0.3,1,2,"), "{curve}");
    assert!(rows[8].starts_with("maze,3,0.3,1,2,"), "{curve}");
    let stderr = String::from_utf8_lossy(&eval.stderr);
    assert!(stderr.contains("maze 3: ") && stderr.contains("of 2 samples commit"), "{stderr}");
    assert!(stderr.contains("(tolerance 0.3)") && stderr.contains("final videos"), "{stderr}");
}

/// Whether the probe result file and the printed table both carry the two baselines, in [0, 1].
fn probes_have_baselines(result: &std::path::Path, table: &str) -> bool {
    let (_, probes) = stepscope_engine::analysis::read_probe_file(result).unwrap();
    let in_unit = |value: f64| (0.0..=1.0).contains(&value);
    let header = table.lines().nth(1).unwrap_or_default();
    probes.layout_balanced_accuracy.is_some_and(in_unit)
        && probes.x0_balanced_accuracy.len() == probes.steps
        && probes.x0_balanced_accuracy.iter().all(|&value| in_unit(value))
        && header.ends_with("layout_baseline,x0_readout_baseline")
}
