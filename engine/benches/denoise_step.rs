//! What one denoising step costs on the CPU, in f32, for a ~2 M-parameter pixel-space Wan model.
//!
//! The model: in/out channels 3, patch (1, 4, 4), 6 layers, 4 heads x 32 (D = 128), ffn 512,
//! `text_dim` 32, `freq_dim` 64. The video: `[3, 6, 32, 32]` (6 frames of 32x32 pixels, so
//! 6 x 8 x 8 = 384 tokens), prompt embeddings `[1, 8, 32]`.
//!
//! Three benchmarks, in the criterion group `denoise_step`:
//!
//! - `forward_bare`: [`WanTransformer::forward`] with [`ForwardProbe::default`] (nothing kept),
//!   timestep 500: the number to compare with PyTorch's forward.
//! - `step_no_capture`: [`SamplingSession::step`] (one forward pass, `x0_hat` and the Euler
//!   update), no guidance, nothing captured.
//! - `step_full_capture`: the same step capturing
//!   `decoded,token_norm,pca3@all;self_attn,cross_attn@all:q=0-15` (a logit-lens picture, token
//!   norms and a 3-component PCA of every layer, and 16 query tokens' self- and cross-attention
//!   at every layer).
//!
//! Only the call itself is timed: each iteration steps a fresh clone of a session at step 0
//! (cloning copies no tensor data), and the outputs are dropped outside the timed region.
//! After criterion's report the bench prints its own summary: for each benchmark the median of the
//! measured samples' per-iteration times (criterion's median point estimate) and the fastest single
//! iteration (comparable with the `min` that the reference script prints, and the steadier number
//! on a busy machine), then the ratios full capture / no capture and step / forward.
//!
//! Weights: when the environment variable `STEPSCOPE_BENCH_MODEL` names a directory, the model is
//! loaded from it: either a diffusers transformer directory (`config.json` +
//! `diffusion_pytorch_model.safetensors`) or the directory that the reference script's bench mode
//! writes (with the model in `model/` and PyTorch's inputs and output in `inputs.safetensors`).
//! When `inputs.safetensors` is found, its inputs are used and the forward pass is checked
//! against PyTorch's output (max abs difference printed). Otherwise the model is built in-process
//! with deterministic random weights of the same config (the timing does not depend on the
//! values). The summary says which was used.
//!
//! To compare with diffusers (from the repository root):
//!
//! ```text
//! /work/venv/bin/python tests/reference/generate_parity.py --bench --bench-dir DIR
//! STEPSCOPE_BENCH_MODEL=DIR cargo bench -p stepscope-engine --bench denoise_step
//! ```
//!
//! The first writes the same model and inputs to `DIR` (nothing committed changes) and prints
//! PyTorch's median forward time with 2 threads; compare it with `forward_bare`. Candle uses one
//! thread per physical core unless `RAYON_NUM_THREADS` says otherwise (the bench prints the cores
//! available); on the 2-core development machine both use 2 threads. On a shared machine, run the
//! script again right after the bench and compare the fastest times as well as the medians.
use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use criterion::{Criterion, SamplingMode};
use stepscope_engine::model::checkpoint::expected_tensors;
use stepscope_engine::model::{ForwardInput, ForwardProbe, WanConfig, WanTransformer};
use stepscope_engine::scheduler::{MAX_STEPS, SchedulerKind};
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_engine::session::{CaptureSpec, Conditioning, NoiseSource, SamplingSession, SessionSettings};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Environment variable naming a model directory to load instead of random weights.
const MODEL_ENV: &str = "STEPSCOPE_BENCH_MODEL";
/// Samples per benchmark; set on the group, so criterion's `--sample-size` does not change it.
const SAMPLE_SIZE: usize = 20;
const MEASUREMENT_TIME: Duration = Duration::from_secs(10);
const WARM_UP_TIME: Duration = Duration::from_secs(2);
/// `[C, F, H, W]` of the video (pixel space).
const LATENT_SHAPE: [usize; 4] = [3, 6, 32, 32];
const PROMPT_TOKENS: usize = 8;
/// The timestep of `forward_bare`, as in the reference script's bench.
const FORWARD_TIMESTEP: f32 = 500.0;
const FULL_CAPTURE: &str = "decoded,token_norm,pca3@all;self_attn,cross_attn@all:q=0-15";
const WEIGHT_SEED: u64 = 4001;
const INPUT_SEED: u64 = 4101;

/// The bench model's config (the reference script's `BENCH_CONFIG`).
fn bench_config() -> WanConfig {
    WanConfig {
        patch_size: [1, 4, 4],
        num_attention_heads: 4,
        attention_head_dim: 32,
        in_channels: 3,
        out_channels: Some(3),
        text_dim: 32,
        freq_dim: 64,
        ffn_dim: 512,
        num_layers: 6,
        ..WanConfig::default()
    }
}

/// The model, the inputs, and where they came from.
struct Setup {
    model: Arc<WanTransformer>,
    /// `[1, C, F, H, W]`
    latents: Tensor,
    /// `[1, L, text_dim]`
    prompt_embeds: Tensor,
    /// PyTorch's output for `latents` at timestep 500, when loaded.
    reference_output: Option<Tensor>,
    source: String,
}

/// Deterministic random weights in the reference script's scheme: matrices and kernels
/// `N(0, 1 / fan_in)`, norm weights 1 + 0.1 N, biases 0.1 N, modulation tables 0.2 N.
fn random_weights(config: &WanConfig, device: &Device) -> BenchResult<HashMap<String, Tensor>> {
    let mut weights = HashMap::new();
    for (seed, (name, shape)) in (WEIGHT_SEED..).zip(expected_tensors(config)) {
        let noise = gaussian_noise(seed, shape.clone(), device)?;
        let tensor = if name.contains("scale_shift_table") {
            (noise * 0.2)?
        } else if shape.len() >= 2 {
            let fan_in: usize = shape[1..].iter().product();
            (noise / (fan_in as f64).sqrt())?
        } else if name.ends_with(".weight") && name.contains("norm") {
            noise.affine(0.1, 1.0)?
        } else {
            (noise * 0.1)?
        };
        weights.insert(name, tensor);
    }
    Ok(weights)
}

/// Where `dir` keeps the model, and the reference inputs if any: `dir` itself or `dir/model`.
fn locate(dir: &Path) -> (PathBuf, Option<PathBuf>) {
    let model_dir = if dir.join("config.json").is_file() { dir.to_owned() } else { dir.join("model") };
    let inputs = [dir.join("inputs.safetensors"), model_dir.join("../inputs.safetensors")]
        .into_iter()
        .find(|path| path.is_file());
    (model_dir, inputs)
}

fn setup(device: &Device) -> BenchResult<Setup> {
    if let Some(dir) = std::env::var_os(MODEL_ENV) {
        let (model_dir, inputs) = locate(Path::new(&dir));
        let model = WanTransformer::load(&model_dir, DType::F32, device)
            .map_err(|e| format!("loading {}: {e}", model_dir.display()))?;
        let mut source = format!("loaded from {} ({MODEL_ENV})", model_dir.display());
        let (latents, prompt_embeds, reference_output) = match inputs {
            Some(path) => {
                let mut tensors = candle_core::safetensors::load(&path, device)?;
                let mut take = |name: &str| {
                    tensors.remove(name).ok_or_else(|| format!("{} has no `{name}`", path.display()))
                };
                let inputs = (take("hidden_states")?, take("encoder_hidden_states")?, take("output").ok());
                source = format!("{source}, inputs from {}", path.display());
                inputs
            }
            None => random_inputs(model.config(), device)?,
        };
        return Ok(Setup { model: Arc::new(model), latents, prompt_embeds, reference_output, source });
    }
    let config = bench_config();
    let weights = random_weights(&config, device)?;
    let model = WanTransformer::new(config, VarBuilder::from_tensors(weights, DType::F32, device))?;
    let (latents, prompt_embeds, _) = random_inputs(model.config(), device)?;
    let source = format!("random in-process (seed {WEIGHT_SEED}; set {MODEL_ENV}=DIR to load a model)");
    Ok(Setup { model: Arc::new(model), latents, prompt_embeds, reference_output: None, source })
}

fn random_inputs(config: &WanConfig, device: &Device) -> BenchResult<(Tensor, Tensor, Option<Tensor>)> {
    let [_, f, h, w] = LATENT_SHAPE;
    let latents = gaussian_noise(INPUT_SEED, (1, config.in_channels, f, h, w), device)?;
    let prompt = gaussian_noise(INPUT_SEED + 1, (1, PROMPT_TOKENS, config.text_dim), device)?;
    Ok((latents, prompt, None))
}

/// A session at step 0 of a long Euler run (no guidance) with `capture`.
fn session(setup: &Setup, capture: &str) -> BenchResult<SamplingSession> {
    let conditioning = Conditioning {
        prompt_embeds: setup.prompt_embeds.clone(),
        negative_prompt_embeds: None,
        condition_latent: None,
    };
    let settings = SessionSettings {
        steps: MAX_STEPS,
        shift: 5.0,
        scheduler: SchedulerKind::Euler,
        guidance_scale: 1.0,
        capture: capture.parse::<CaptureSpec>()?,
    };
    let noise = setup.latents.squeeze(0)?;
    let shape: [usize; 4] = noise.dims().try_into().map_err(|_| "the latents are not [1, C, F, H, W]")?;
    Ok(SamplingSession::new(
        Arc::clone(&setup.model),
        Arc::new(conditioning),
        settings,
        shape,
        &NoiseSource::Given(noise),
    )?)
}

/// One step of a fresh clone of `base`; returns the time of the step alone.
fn timed_step(base: &SamplingSession) -> Duration {
    let mut session = base.clone();
    let start = Instant::now();
    let record = session.step().expect("the denoising step failed");
    let elapsed = start.elapsed();
    drop(black_box(record));
    elapsed
}

/// Per call of a benchmark's routine (warm-up calls first): the mean time of its iterations and
/// the fastest one.
#[derive(Debug, Default)]
struct Samples(Vec<(Duration, Duration)>);

/// Statistics of the measured samples of one benchmark.
#[derive(Debug, Clone, Copy)]
struct Summary {
    /// Median of the samples' per-iteration means (criterion's median point estimate).
    median: Duration,
    /// The fastest single iteration.
    fastest: Duration,
    samples: usize,
}

impl Samples {
    /// Statistics of the measured samples (the last [`SAMPLE_SIZE`] calls).
    fn summary(&self) -> Option<Summary> {
        let measured = &self.0[self.0.len().saturating_sub(SAMPLE_SIZE)..];
        let mut means: Vec<Duration> = measured.iter().map(|&(mean, _)| mean).collect();
        means.sort_unstable();
        let n = means.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => means[n / 2],
            _ => (means[n / 2 - 1] + means[n / 2]) / 2,
        };
        let fastest = measured.iter().map(|&(_, fastest)| fastest).min()?;
        Some(Summary { median, fastest, samples: n })
    }
}

/// Runs `routine` (which times one iteration itself) under criterion and records every sample.
fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut routine: impl FnMut() -> Duration,
) -> Samples {
    let mut samples = Samples::default();
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let times: Vec<Duration> = (0..iters).map(|_| routine()).collect();
            let total: Duration = times.iter().sum();
            let fastest = times.iter().min().copied().unwrap_or_default();
            samples.0.push((total / u32::try_from(iters.max(1)).unwrap_or(u32::MAX), fastest));
            total
        });
    });
    samples
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() {
    let device = Device::Cpu;
    let setup = setup(&device).expect("setting up the bench model");
    let config = setup.model.config();
    let tokens = setup.model.grid(&setup.latents).expect("the latents fit the model").len();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "stepscope denoise_step bench: {} parameters ({} layers, D {}, ffn {}), latent {:?}, {tokens} tokens, \
         prompt {:?}, f32 on CPU ({threads} cores available)",
        setup.model.parameter_count(),
        config.num_layers,
        config.inner_dim(),
        config.ffn_dim,
        setup.latents.dims(),
        setup.prompt_embeds.dims(),
    );
    println!("weights: {}", setup.source);

    let timesteps = Tensor::new(&[FORWARD_TIMESTEP], &device).expect("timestep tensor");
    let input =
        ForwardInput { latents: &setup.latents, timesteps: &timesteps, text_embeds: &setup.prompt_embeds };
    let probe = ForwardProbe::default();
    if let Some(reference) = &setup.reference_output {
        let ours = setup.model.forward(&input, &probe).expect("forward pass").velocity;
        let diff = (ours - reference)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .expect("comparing with PyTorch's output");
        println!("forward vs PyTorch's output (timestep {FORWARD_TIMESTEP}): max abs difference {diff:.3e}");
    }
    let plain = session(&setup, "").expect("building the session without capture");
    let captured = session(&setup, FULL_CAPTURE).expect("building the session with full capture");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("denoise_step");
    group
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP_TIME)
        .measurement_time(MEASUREMENT_TIME)
        .sampling_mode(SamplingMode::Flat);
    let forward = bench(&mut group, "forward_bare", || {
        let start = Instant::now();
        let out = setup.model.forward(black_box(&input), &probe).expect("forward pass");
        let elapsed = start.elapsed();
        drop(black_box(out));
        elapsed
    });
    let step = bench(&mut group, "step_no_capture", || timed_step(&plain));
    let step_capture = bench(&mut group, "step_full_capture", || timed_step(&captured));
    group.finish();
    criterion.final_summary();

    println!("summary (measured samples; weights {}):", setup.source);
    let medians =
        [("forward_bare", &forward), ("step_no_capture", &step), ("step_full_capture", &step_capture)].map(
            |(name, samples)| {
                let summary = samples.summary();
                match summary {
                    Some(Summary { median, fastest, samples }) => println!(
                        "  {name:<18} median {:9.3} ms, fastest {:9.3} ms  ({samples} samples)",
                        ms(median),
                        ms(fastest)
                    ),
                    None => println!("  {name:<18} not run"),
                }
                summary.map(|summary| ms(summary.median))
            },
        );
    if let [Some(forward), Some(step), _] = medians {
        println!("  step_no_capture / forward_bare      = {:.3} (medians)", step / forward);
    }
    if let [_, Some(step), Some(step_capture)] = medians {
        println!(
            "  step_full_capture / step_no_capture = {:.3} (medians; +{:.3} ms for `{FULL_CAPTURE}`)",
            step_capture / step,
            step_capture - step
        );
    }
}
