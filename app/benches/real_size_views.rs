//! The UI's CPU time per frame on a real-size trajectory, per view, while scrubbing the steps.
//!
//! Writes (once, under `target/bench-data/`) a SYNTHETIC trajectory shaped like a Wan2.1 480p
//! run: `x0` of 16 x 21 x 60 x 104 at 50 UniPC steps for 2 seeds, and, at 5 steps of seed 0, the
//! decoded video of 3 x 81 x 480 x 832 (f16) and the per-layer `x0` and self-attention (12 heads
//! x 4 query tokens x 32,760 tokens, f16) captures of 8 blocks; the values are seeded noise,
//! labelled as such in the manifest. Then, in a 1280 x 800 window, for
//! each view (Frames on `x0_hat`, Frames on the decoded video, Steps x frames on each, Layers,
//! Compare seeds), steps through the run with the arrow key and times
//! every frame around `Harness::step` (the app's `ui` with everything it reads and down-samples
//! on the UI thread, plus egui's layout and tessellation; the frame is not rendered, so uploads
//! and the GPU's work are not in it). Tensors above a quarter of a million values (a Wan latent)
//! are read, and frames down-sampled, on the loader threads, so after each key press the bench
//! steps the window until nothing is still loading: it reports the UI thread's time
//! per frame (every frame, placeholders included) and the time from the key press until the
//! visible frames are final (no placeholder counts as drawn), p50 and p95 of a first visit
//! (tensors read and down-sampled) and of a second (cached), the first frame after opening, and
//! the resident memory after it.
//!
//! `cargo bench -p stepscope --bench real_size_views`
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "a benchmark binary: failures abort it")]

use std::path::Path;
use std::time::{Duration, Instant};

use bench_data::{bench_file, resident_mb};
use candle_core::{DType, Device};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use no_picker::NoPicker;
use stepscope::viewer::StepscopeApp;
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::trajectory::{
    CaptureKind, Captures, StepTensor, StorageDtype, TensorName, TrajectoryWriter, VideoInfo,
};
use synthetic_run::synthetic_manifest;

#[path = "support/synthetic_run.rs"]
mod synthetic_run;

#[path = "support/no_picker.rs"]
mod no_picker;

#[path = "support/bench_data.rs"]
mod bench_data;

const STEPS: usize = 50;
const SEEDS: usize = 2;
const LATENT_SHAPE: [usize; 4] = [16, 21, 60, 104];
const VIDEO_SHAPE: [usize; 4] = [3, 81, 480, 832];
const VIDEO_STEPS: [usize; 5] = [0, 12, 25, 37, 49];
/// Blocks whose `x0` prediction and self-attention are captured at the video steps (as a Wan2.1
/// 1.3B run capturing every fourth of its 30 blocks).
const CAPTURED_LAYERS: usize = 8;
/// Wan2.1 1.3B's attention heads.
const HEADS: usize = 12;
/// Query tokens whose attention over all 32,760 tokens is captured (first, middle frames, last).
const QUERY_TOKENS: [usize; 4] = [0, 10_000, 20_000, 32_759];

fn write_file(path: &Path) {
    let video = VideoInfo { shape: VIDEO_SHAPE, decoder: "none (synthetic noise)".to_owned() };
    let mut manifest = synthetic_manifest(
        "real_size_views",
        (STEPS, LATENT_SHAPE),
        (SEEDS, vec![StepTensor::X0]),
        Some((video, VIDEO_STEPS.to_vec())),
    );
    manifest.captures = Captures {
        layers: (0..CAPTURED_LAYERS).collect(),
        kinds: vec![CaptureKind::X0, CaptureKind::SelfAttn],
        query_tokens: QUERY_TOKENS.to_vec(),
    };
    manifest.seeds[0].capture_steps = VIDEO_STEPS.to_vec();
    let mut writer = TrajectoryWriter::new(manifest);
    // A few distinct tensors shared by every step keep the writer's memory small.
    let x0: Vec<_> =
        (0..4u64).map(|seed| gaussian_noise(seed, &LATENT_SHAPE[..], &Device::Cpu).unwrap()).collect();
    let video = (gaussian_noise(9, &VIDEO_SHAPE[..], &Device::Cpu).unwrap() * 0.5)
        .unwrap()
        .clamp(-1.0, 1.0)
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap();
    // Rows of probabilities over the 32,760 tokens: a softmax of seeded noise.
    let tokens = LATENT_SHAPE[1] * (LATENT_SHAPE[2] / 2) * (LATENT_SHAPE[3] / 2);
    let logits =
        (gaussian_noise(11, &[HEADS, QUERY_TOKENS.len(), tokens][..], &Device::Cpu).unwrap() * 2.0).unwrap();
    let exp = logits.exp().unwrap();
    let attention = exp.broadcast_div(&exp.sum_keepdim(2).unwrap()).unwrap();
    for seed_idx in 0..SEEDS {
        for step_idx in 0..STEPS {
            let name = TensorName::Step { seed_idx, step_idx, kind: StepTensor::X0 };
            writer.insert(name, x0[(step_idx + seed_idx) % x0.len()].clone());
        }
    }
    for step_idx in VIDEO_STEPS {
        // Stored as f16 (`export_run(..., video_storage="f16")` in the Python exporter).
        writer.insert_as(TensorName::Video { seed_idx: 0, step_idx }, video.clone(), StorageDtype::F16);
        for layer_idx in 0..CAPTURED_LAYERS {
            let name = TensorName::Capture { seed_idx: 0, step_idx, layer_idx, kind: CaptureKind::X0 };
            writer.insert(name, x0[layer_idx % x0.len()].clone());
            let name = TensorName::Capture { seed_idx: 0, step_idx, layer_idx, kind: CaptureKind::SelfAttn };
            writer.insert_as(name, attention.clone(), StorageDtype::F16);
        }
    }
    writer.write(path).unwrap();
}

/// p50 and p95 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

/// What one pass over the steps measured.
struct Scrub {
    /// The UI thread's time in each frame.
    frames: Vec<Duration>,
    /// Per step, from the key press until no visible frame is still loading.
    until_final: Vec<Duration>,
}

/// Steps through every step of seed 0 with the Right key, timing each frame until the
/// visible frames are final.
fn scrub(harness: &mut Harness<'_, StepscopeApp>) -> Scrub {
    harness.key_press(egui::Key::Home);
    settle(harness);
    let mut scrub = Scrub { frames: Vec::new(), until_final: Vec::new() };
    for _ in 1..STEPS {
        harness.key_press(egui::Key::ArrowRight);
        let pressed = Instant::now();
        loop {
            let start = Instant::now();
            harness.step();
            scrub.frames.push(start.elapsed());
            if harness.state().frames_loading() == 0 {
                break;
            }
            assert!(pressed.elapsed() < Duration::from_mins(1), "frames never finished loading");
            std::thread::sleep(Duration::from_micros(200));
        }
        scrub.until_final.push(pressed.elapsed());
    }
    scrub
}

/// Steps the window until nothing is loading.
fn settle(harness: &mut Harness<'_, StepscopeApp>) {
    harness.step();
    while harness.state().frames_loading() > 0 {
        std::thread::sleep(Duration::from_millis(1));
        harness.step();
    }
}

/// "N MB (M MB of it mapped file pages)".
fn resident() -> String {
    let (total, file) = resident_mb();
    format!("{total:.0} MB ({file:.0} MB of it mapped file pages)")
}

fn main() {
    let path = bench_file("real_size_views_attention.safetensors", write_file);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "SYNTHETIC file: {:.2} GB; x0 {LATENT_SHAPE:?} x {STEPS} steps x {SEEDS} seeds, video {VIDEO_SHAPE:?} f16, and x0 and self-attention of {CAPTURED_LAYERS} layers at steps {VIDEO_STEPS:?}",
        bytes as f64 / 1e9
    );
    let rss_before = resident();
    let start = Instant::now();
    let open = path.clone();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, Some(&open), Box::new(NoPicker)));
    harness.step();
    let first_frame = start.elapsed();
    // The first frame shows "reading…" while the loader thread reads step 0's latent.
    settle(&mut harness);
    let first_drawn = start.elapsed();
    harness.get_by_label("frame 20");
    println!(
        "open + first frame: {:.1} ms, until step 0 is drawn {:.1} ms; resident memory {} after it \
         ({rss_before} before the window)",
        first_frame.as_secs_f64() * 1e3,
        first_drawn.as_secs_f64() * 1e3,
        resident()
    );
    let views = [
        ("Frames", "x0_hat"),
        ("Frames", "decoded video"),
        ("Steps x frames", "x0_hat"),
        ("Steps x frames", "decoded video"),
        ("Layers", "x0_hat"),
        ("Compare seeds", "x0_hat"),
    ];
    for (tab, view) in views {
        harness.get_by_label(tab).click();
        harness.get_by_label(view).click();
        settle(&mut harness);
        for pass in ["first visit", "second visit"] {
            let Scrub { mut frames, mut until_final } = scrub(&mut harness);
            let (p50, p95) = percentiles(&mut frames);
            let (final50, final95) = percentiles(&mut until_final);
            println!(
                "{tab:>14} / {view:<13} {pass}: {} steps in {} frames; UI per frame p50 {p50:.2} ms, \
                 p95 {p95:.2} ms; key press to final p50 {final50:.1} ms, p95 {final95:.1} ms; resident {}",
                until_final.len(),
                frames.len(),
                resident()
            );
        }
    }
}
