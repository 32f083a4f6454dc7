//! Time from opening a 2 GB trajectory to its first frame on screen.
//!
//! Writes (once, under `target/bench-data/`) a synthetic 2 GB trajectory shaped like a real
//! Wan2.1 run: 16-channel latents of 21 x 60 x 104 (480p, 81 frames), 80 UniPC steps, `x_t` /
//! velocity / x0 at every step, f32 — the values are seeded noise, labelled as such in the
//! manifest. Then, several times: builds the window on the file (the app's own constructor,
//! as `stepscope FILE` runs it), runs its first frame and renders it through wgpu (Mesa's CPU
//! adapter here), then steps the window until the step's frames have been read on the loader
//! thread and renders again, timing each part. The reader maps the file and reads only the tensors the
//! first frame shows.
//!
//! Then the same for a file of many small tensors: what `stepscope solve --seeds 120 --capture
//! "hidden,decoded,token_norm@all"` writes on the built-in maze model (about 65,000 tensors; its
//! header is most of the cost), written once with the release binary. Each run also reports the
//! resident memory after the first frame.
//!
//! `cargo bench -p stepscope --bench time_to_first_frame`
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "a benchmark binary: failures abort it")]

use std::path::Path;
use std::time::Instant;

use bench_data::{bench_file, resident_mb};
use candle_core::Device;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use no_picker::NoPicker;
use stepscope::viewer::StepscopeApp;
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::trajectory::{StepTensor, TensorName, TrajectoryWriter};
use synthetic_run::synthetic_manifest;

#[path = "support/synthetic_run.rs"]
mod synthetic_run;

#[path = "support/no_picker.rs"]
mod no_picker;

#[path = "support/bench_data.rs"]
mod bench_data;

const STEPS: usize = 80;
const LATENT_SHAPE: [usize; 4] = [16, 21, 60, 104];
const RUNS: usize = 5;

fn write_big_file(path: &Path) {
    let manifest =
        synthetic_manifest("time_to_first_frame", (STEPS, LATENT_SHAPE), (1, StepTensor::ALL.to_vec()), None);
    let mut writer = TrajectoryWriter::new(manifest);
    // Three distinct tensors shared by every step keep the writer's memory small.
    let tensors: Vec<_> =
        (0..3u64).map(|seed| gaussian_noise(seed, &LATENT_SHAPE[..], &Device::Cpu).unwrap()).collect();
    for step_idx in 0..STEPS {
        for (kind, tensor) in StepTensor::ALL.into_iter().zip(&tensors) {
            writer.insert(TensorName::Step { seed_idx: 0, step_idx, kind }, tensor.clone());
        }
    }
    writer.write(path).unwrap();
}

/// Opens `path` in a 1280 x 800 window `RUNS` times, timing the first frame of each.
fn time_first_frames(path: &Path) {
    for run in 0..RUNS {
        let start = Instant::now();
        let open = path.to_owned();
        let mut harness = Harness::builder()
            .with_size([1280.0, 800.0])
            .wgpu()
            .build_eframe(move |cc| StepscopeApp::new(cc, Some(&open), Box::new(NoPicker)));
        let constructed = start.elapsed();
        harness.step();
        let first_ui_frame = start.elapsed();
        harness.render().unwrap();
        let rendered = start.elapsed();
        // A Wan-sized latent is read on the loader thread: the first frame says "reading…" and
        // the step's frames follow.
        while harness.state().frames_loading() > 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
            harness.step();
        }
        harness.render().unwrap();
        let final_frame = start.elapsed();
        harness.get_by_label("frame 0");
        assert!(harness.state().document().is_some(), "the file opened");
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "run {run}: window + open {:.1} ms, first UI frame done {:.1} ms, first frame rendered {:.1} ms, \
             its frames drawn {:.1} ms; resident {:.0} MB",
            ms(constructed),
            ms(first_ui_frame),
            ms(rendered),
            ms(final_frame),
            resident_mb().0
        );
    }
}

fn main() {
    let path = bench_file("time_to_first_frame_2gb.safetensors", write_big_file);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "SYNTHETIC file: {:.2} GB, {STEPS} steps x 3 tensors of {LATENT_SHAPE:?} f32",
        bytes as f64 / 1e9
    );
    time_first_frames(&path);

    let many = bench_file("solve_120_seeds.safetensors", |path| {
        let solved = std::process::Command::new(env!("CARGO_BIN_EXE_stepscope"))
            .args(["solve", "--seeds", "120", "--capture", "hidden,decoded,token_norm@all", "--quiet", "-o"])
            .arg(path)
            .status()
            .unwrap();
        assert!(solved.success(), "stepscope solve failed");
    });
    let reader = stepscope_engine::trajectory::TrajectoryReader::open(&many).unwrap();
    let bytes = std::fs::metadata(&many).unwrap().len();
    println!(
        "file of the built-in maze model (`solve --seeds 120`): {:.1} MB, {} tensors",
        bytes as f64 / 1e6,
        reader.tensor_names().len()
    );
    drop(reader);
    time_first_frames(&many);
}
