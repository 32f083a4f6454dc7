//! The UI's CPU time per frame while scrubbing: a 50-step x 4-seed trajectory with layer
//! captures (recorded here from the random-weight test model `tests/fixtures/parity/t2v_hd20`
//! at 4 x 5 x 32 x 32 latents), stepped through with the arrow key in each of the three
//! centre tabs, every frame timed around `Harness::step` (the app's `ui` plus egui's layout
//! and tessellation; GPU work is not CPU time and is not included). Reports p50 and p95 of a
//! first pass (tensors read from the file and uploaded) and a second pass (cached).
//!
//! `cargo bench -p stepscope --bench ui_frame_time`
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "a benchmark binary: failures abort it")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_data::bench_file;
use candle_core::{DType, Device};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use no_picker::NoPicker;
use stepscope::viewer::StepscopeApp;
use stepscope_engine::model::WanTransformer;
use stepscope_engine::recording::{Recorder, RunProvenance};
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{Conditioning, NoiseSource, SamplingSession, SessionSettings};
use stepscope_engine::tensor_file::read_tensor;
use stepscope_engine::trajectory::{self, StorageDtype};

#[path = "support/no_picker.rs"]
mod no_picker;

#[path = "support/bench_data.rs"]
mod bench_data;

const STEPS: usize = 50;
const SEEDS: u64 = 4;
const LATENT_SHAPE: [usize; 4] = [4, 5, 32, 32];

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// Records the benchmark's trajectory to `path`.
fn record(path: &Path) {
    let device = Device::Cpu;
    let model = Arc::new(
        WanTransformer::load(&repo_path("tests/fixtures/parity/t2v_hd20"), DType::F32, &device).unwrap(),
    );
    let prompt_embeds = read_tensor(
        &repo_path("tests/fixtures/parity/sample_t2v_unipc.safetensors"),
        "prompt_embeds",
        3,
        &device,
    )
    .unwrap();
    let conditioning =
        Arc::new(Conditioning { prompt_embeds, negative_prompt_embeds: None, condition_latent: None });
    let settings = SessionSettings {
        steps: STEPS,
        shift: 3.0,
        scheduler: SchedulerKind::UniPc,
        guidance_scale: 1.0,
        capture: "decoded,token_norm,pca3@all".parse().unwrap(),
    };
    let provenance = RunProvenance {
        model_source: "tests/fixtures/parity/t2v_hd20 (random weights, benchmark)".to_owned(),
        ..RunProvenance::default()
    };
    let mut recorder: Option<Recorder> = None;
    for rng_seed in 0..SEEDS {
        let noise = NoiseSource::Seed(rng_seed);
        let mut session = SamplingSession::new(
            Arc::clone(&model),
            Arc::clone(&conditioning),
            settings.clone(),
            LATENT_SHAPE,
            &noise,
        )
        .unwrap();
        let recorder =
            recorder.get_or_insert_with(|| Recorder::new(&session, provenance.clone(), StorageDtype::F32));
        let seed_idx = recorder.add_seed(trajectory::NoiseSource::RngSeed(rng_seed), None);
        while !session.is_finished() {
            recorder.record_step(seed_idx, &session.step().unwrap());
        }
        recorder.finish_seed(seed_idx, session.latents().unwrap());
    }
    recorder.unwrap().write(path).unwrap();
}

/// p50 and p95 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}

/// Steps through every step of every seed with the Right key, timing each frame.
fn scrub(harness: &mut Harness<'_, StepscopeApp>) -> Vec<Duration> {
    let mut samples = Vec::new();
    for seed_idx in 0..SEEDS {
        harness.get_by_label(&format!("■ seed {seed_idx} (RNG {seed_idx})")).click();
        harness.step();
        harness.key_press(egui::Key::Home);
        harness.step();
        for _ in 0..STEPS {
            harness.key_press(egui::Key::ArrowRight);
            let start = Instant::now();
            harness.step();
            samples.push(start.elapsed());
        }
    }
    samples
}

fn main() {
    let path = bench_file("ui_frame_time_50x4.safetensors", record);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "trajectory: {STEPS} steps x {SEEDS} seeds, latents {LATENT_SHAPE:?}, captures decoded/token_norm/pca3 at 2 layers, {:.1} MB",
        bytes as f64 / 1e6
    );
    let open = path.clone();
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, Some(&open), Box::new(NoPicker)));
    harness.run();
    for tab in ["Frames", "Layers", "Compare seeds"] {
        harness.get_by_label(tab).click();
        harness.run();
        for pass in ["first pass", "second pass"] {
            let mut samples = scrub(&mut harness);
            let (p50, p95) = percentiles(&mut samples);
            println!("{tab:>6} tab, {pass}: {} frames, p50 {p50:.2} ms, p95 {p95:.2} ms", samples.len());
        }
    }
}
