//! A byte changed in a checksummed file (format version 2) is named wherever the tensor is
//! read: by `stepscope info --verify`, by `stepscope export`, and in the window, for a step
//! tensor, a decoded video and a layer capture. The file is SYNTHETIC (seeded noise).
#![allow(clippy::unwrap_used, reason = "test code: a failure is the report")]

use std::path::Path;
use std::process::Command;

use candle_core::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use stepscope::viewer::StepscopeApp;
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::trajectory::{
    CaptureKind, Captures, StepTensor, TensorName, TrajectoryReader, TrajectoryWriter, VideoInfo,
};
use support::{FixedPicker, settle};

#[path = "../benches/support/synthetic_run.rs"]
mod synthetic_run;

mod support;

const LATENT_SHAPE: [usize; 4] = [4, 2, 8, 8];
const VIDEO_SHAPE: [usize; 4] = [3, 5, 16, 16];

/// Two steps of one seed: `x0` at both, the decoded video and the `x0` of two layers at step 1.
fn write_file(path: &Path) {
    let video = VideoInfo { shape: VIDEO_SHAPE, decoder: "none (synthetic noise)".to_owned() };
    let mut manifest = synthetic_run::synthetic_manifest(
        "corrupt_files",
        (2, LATENT_SHAPE),
        (1, vec![StepTensor::X0]),
        Some((video, vec![1])),
    );
    manifest.captures =
        Captures { layers: vec![0, 1], kinds: vec![CaptureKind::X0], query_tokens: Vec::new() };
    manifest.seeds[0].capture_steps = vec![1];
    let mut writer = TrajectoryWriter::new(manifest);
    let noise = |seed: u64, shape: [usize; 4]| gaussian_noise(seed, &shape[..], &Device::Cpu).unwrap();
    for step_idx in 0..2 {
        writer.insert(TensorName::x0(0, step_idx), noise(step_idx as u64, LATENT_SHAPE));
    }
    writer.insert(
        TensorName::Video { seed_idx: 0, step_idx: 1 },
        noise(5, VIDEO_SHAPE).clamp(-1.0, 1.0).unwrap(),
    );
    for layer_idx in 0..2 {
        writer.insert(
            TensorName::capture(0, 1, layer_idx, CaptureKind::X0),
            noise(10 + layer_idx as u64, LATENT_SHAPE),
        );
    }
    writer.write(path).unwrap();
}

/// A copy of `clean` at `path` with one bit flipped in the middle of tensor `name`'s data.
fn corrupt_copy(clean: &Path, path: &Path, name: &TensorName) {
    let reader = TrajectoryReader::open(clean).unwrap();
    let range = reader.tensor_info(name).unwrap().data_range.clone();
    let mut bytes = std::fs::read(clean).unwrap();
    let data_start = 8 + usize::try_from(u64::from_le_bytes(bytes[..8].try_into().unwrap())).unwrap();
    bytes[data_start + range.start + range.len() / 2] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn stepscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stepscope")).args(args).output().unwrap()
}

/// The window on `path` at step 1, showing `tab` (and `view`, if given), settled.
fn window_at_step_1(path: &Path, tab: &str, view: Option<&str>) -> Harness<'static, StepscopeApp> {
    let open = path.to_owned();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, Some(&open), Box::new(FixedPicker::default())));
    settle(&mut harness);
    harness.get_by_label(tab).click();
    if let Some(view) = view {
        harness.get_by_label(view).click();
    }
    harness.key_press(egui::Key::ArrowRight);
    settle(&mut harness);
    harness
}

#[test]
fn a_flipped_byte_is_named_by_info_verify_export_and_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.safetensors");
    write_file(&clean);
    let verified = stepscope(&["info", "--verify", clean.to_str().unwrap()]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    let cases = [
        (TensorName::x0(0, 1), Some("x0"), "Frames", None),
        (TensorName::Video { seed_idx: 0, step_idx: 1 }, Some("video"), "Frames", Some("decoded video")),
        (TensorName::capture(0, 1, 1, CaptureKind::X0), None, "Layers", None),
    ];
    for (name, export_view, tab, view) in cases {
        let path = dir.path().join("corrupt.safetensors");
        corrupt_copy(&clean, &path, &name);
        let named = format!("tensor `{name}` is corrupt");

        let verify = stepscope(&["info", "--verify", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&verify.stderr);
        assert!(!verify.status.success() && stderr.contains(&named), "info --verify on {name}: {stderr}");
        assert!(stderr.contains("1 of"), "one tensor is named corrupt: {stderr}");

        if let Some(export_view) = export_view {
            let sheet = dir.path().join("sheet.png");
            let export = stepscope(&[
                "export",
                path.to_str().unwrap(),
                "--view",
                export_view,
                "--sheet",
                sheet.to_str().unwrap(),
            ]);
            let stderr = String::from_utf8_lossy(&export.stderr);
            assert!(!export.status.success() && stderr.contains(&named), "export of {name}: {stderr}");
            assert!(!sheet.exists(), "nothing written");
        }

        let harness = window_at_step_1(&path, tab, view);
        harness.get(By::new().label_contains(&named));
    }
}
