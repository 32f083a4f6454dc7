//! Tensors too large to read within a frame (a Wan latent is 2.1 M values) are read on the
//! `stepscope-tensors` thread: the window shows "reading…" for them at once and draws them when
//! they arrive, in every view that reads them (Frames, Layers, Compare seeds). The file is
//! SYNTHETIC (seeded noise shaped like a small Wan latent: 16 x 3 x 60 x 104, 300 K values).
#![allow(clippy::unwrap_used, reason = "test code: a failure is the report")]

use std::path::Path;

use candle_core::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use stepscope::viewer::StepscopeApp;
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::trajectory::{CaptureKind, Captures, StepTensor, TensorName, TrajectoryWriter};
use support::{FixedPicker, settle};

#[path = "../benches/support/synthetic_run.rs"]
mod synthetic_run;

mod support;

const STEPS: usize = 3;
const SEEDS: usize = 2;
const LAYERS: usize = 2;
/// 299,520 values: above the cache's bound for reading on the UI thread (262,144).
const LATENT_SHAPE: [usize; 4] = [16, 3, 60, 104];

fn write_file(path: &Path) {
    let mut manifest = synthetic_run::synthetic_manifest(
        "large_tensors_ui",
        (STEPS, LATENT_SHAPE),
        (SEEDS, vec![StepTensor::X0]),
        None,
    );
    manifest.captures =
        Captures { layers: (0..LAYERS).collect(), kinds: vec![CaptureKind::X0], query_tokens: Vec::new() };
    manifest.seeds[0].capture_steps = (0..STEPS).collect();
    let mut writer = TrajectoryWriter::new(manifest);
    let noise = |seed: u64| gaussian_noise(seed, &LATENT_SHAPE[..], &Device::Cpu).unwrap();
    for step_idx in 0..STEPS {
        for seed_idx in 0..SEEDS {
            let name = TensorName::Step { seed_idx, step_idx, kind: StepTensor::X0 };
            writer.insert(name, noise((10 * step_idx + seed_idx) as u64));
        }
        for layer_idx in 0..LAYERS {
            let name = TensorName::Capture { seed_idx: 0, step_idx, layer_idx, kind: CaptureKind::X0 };
            writer.insert(name, noise((100 + 10 * step_idx + layer_idx) as u64));
        }
    }
    writer.write(path).unwrap();
}

/// Clicks the tab `tab` and runs one frame: what the UI thread draws before any read is back.
fn first_frame_of(harness: &mut Harness<'_, StepscopeApp>, tab: &str) {
    harness.get_by_label(tab).click();
    harness.step();
    harness.step();
}

#[test]
fn large_tensors_show_reading_at_once_and_are_drawn_when_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.safetensors");
    write_file(&path);
    let open = path.clone();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, Some(&open), Box::new(FixedPicker::default())));
    harness.step();
    assert!(harness.state().frames_loading() > 0, "the first frame asks the thread for the latent");
    harness.get_by_label("reading…");
    settle(&mut harness);
    harness.get_by_label("frame 2");
    assert!(harness.query_by_label("reading…").is_none());

    first_frame_of(&mut harness, "Layers");
    settle(&mut harness);
    harness.get_by_label("layer 1");
    assert!(harness.query_by_label("reading…").is_none(), "both layers' captures arrived");
    let layer_pictures = harness.state().cached_frame_sets();

    first_frame_of(&mut harness, "Compare seeds");
    settle(&mut harness);
    harness.get_by_label("|0 - 1|");
    assert!(harness.query_by_label("reading…").is_none(), "both seeds and their difference's range arrived");
    assert_eq!(harness.state().cached_frame_sets(), layer_pictures + 1, "seed 1's latent was read once more");

    // The next step: read on the thread again, drawn when it arrives.
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    assert!(harness.state().frames_loading() > 0);
    settle(&mut harness);
    assert!(harness.query_by_label("reading…").is_none());
    assert_eq!(harness.state().frames_loading(), 0);
}
