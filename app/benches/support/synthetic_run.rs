//! The manifest of a SYNTHETIC run (seeded noise, no model) shaped like a Wan2.1 480p run, shared
//! by the window benchmarks (each includes this file with `#[path]`).

use serde_json::Map;
use stepscope_engine::scheduler::{SchedulerKind, Solver};
use stepscope_engine::trajectory::{
    Captures, Conditioning, FORMAT_VERSION, Manifest, ModelInfo, NoiseSource, Schedule, SeedRecord,
    StepTensor, VideoInfo,
};

/// A UniPC run of `steps` steps (shift 3) written by `benchmark`, with `seeds` seeds that each
/// store `step_tensors` at every step (seed 0 also the decoded `video` at `video_steps`).
///
/// # Panics
/// If `steps` is 0 (no schedule).
#[must_use]
pub fn synthetic_manifest(
    benchmark: &str,
    (steps, latent_shape): (usize, [usize; 4]),
    (seeds, step_tensors): (usize, Vec<StepTensor>),
    video: Option<(VideoInfo, Vec<usize>)>,
) -> Manifest {
    let solver = Solver::new(SchedulerKind::UniPc, steps, 3.0).expect("a benchmark run has steps");
    let schedule = solver.schedule().clone();
    let video_steps = video.as_ref().map(|(_, steps)| steps.clone()).unwrap_or_default();
    let seed = |seed_idx: usize| SeedRecord {
        noise: NoiseSource::RngSeed(seed_idx as u64),
        forked_from: None,
        intervention: None,
        steps: (0..steps).collect(),
        capture_steps: Vec::new(),
        final_latents: false,
        video_steps: if seed_idx == 0 { video_steps.clone() } else { Vec::new() },
    };
    Manifest {
        format_version: FORMAT_VERSION,
        created_by: format!("stepscope benchmark {benchmark}"),
        model: ModelInfo {
            source: "synthetic: seeded noise shaped like a Wan2.1 480p run (benchmark data, no model)"
                .to_owned(),
            config: Map::new(),
            dtype: "f32".to_owned(),
        },
        conditioning: Conditioning {
            prompt: None,
            prompt_embeddings: "none".to_owned(),
            guidance_scale: 1.0,
            negative_prompt: false,
            condition_frame: false,
            task: None,
        },
        schedule: Schedule {
            scheduler: schedule.kind,
            steps: schedule.steps(),
            shift: schedule.shift,
            sigmas: schedule.sigmas.clone(),
            timesteps: schedule.timesteps.clone(),
        },
        latent_shape,
        patch_size: [1, 2, 2],
        step_tensors,
        seeds: (0..seeds).map(seed).collect(),
        captures: Captures::default(),
        video: video.map(|(info, _)| info),
    }
}
