//! `stepscope record`: load a model, run one session per seed, write the trajectory file.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use stepscope::first_frame::load_first_frame;
use stepscope_engine::device::device_named;
use stepscope_engine::model::checkpoint::CheckpointFiles;
use stepscope_engine::model::memory::{available_memory_bytes, gib};
use stepscope_engine::model::{WanConfig, WanTransformer, estimate_memory};
use stepscope_engine::pipeline::{PipelineFolder, estimate_pipeline};
use stepscope_engine::recording::{Recorder, RunProvenance};
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{CaptureSpec, Conditioning, NoiseSource, SamplingSession, SessionSettings};
use stepscope_engine::tensor_file::read_tensor;
use stepscope_engine::text::{EmbeddingCache, PromptEncoder, encode_prompts};
use stepscope_engine::trajectory::{self, StorageDtype};
use stepscope_engine::vae::{WanVae, WanVaeEncoding};

use crate::cli::{ComputeDtype, RecordArgs, StoreDtype};
use crate::progress::progress_bar;

/// The candle dtype of a `--dtype` choice.
pub fn compute_dtype(dtype: ComputeDtype) -> DType {
    match dtype {
        ComputeDtype::F32 => DType::F32,
        ComputeDtype::F16 => DType::F16,
        ComputeDtype::Bf16 => DType::BF16,
    }
}

/// States what the run will need, and refuses one that will not fit in the memory this
/// machine has free (when it can tell; on a GPU the check is left to the driver).
fn check_memory(args: &RecordArgs, model_dir: &Path, dtype: DType, device: &Device) -> Result<()> {
    let config = CheckpointFiles::locate(model_dir)
        .and_then(|files| WanConfig::from_file(&files.config))
        .with_context(|| format!("loading the model from {}", model_dir.display()))?;
    let Some([frames, height, width]) = args.size else { return Ok(()) };
    let shape = [config.in_channels, frames, height, width];
    let per_token = args.condition_latent.is_some();
    let estimate = estimate_memory(&config, dtype, shape, per_token)?;
    let needs = format!(
        "{} ({} of weights, about {} of activations for {} tokens)",
        gib(estimate.total_bytes()),
        gib(estimate.weight_bytes),
        gib(estimate.activation_bytes),
        estimate.tokens
    );
    if !args.quiet {
        eprintln!("the run needs about {needs}");
    }
    if let (Device::Cpu, Some(available)) = (device, available_memory_bytes())
        && estimate.total_bytes() > available
    {
        bail!(
            "the run needs about {needs}, but only {} is free: try --dtype bf16, a smaller --size, \
             or a GPU (--device cuda)",
            gib(available)
        );
    }
    Ok(())
}

/// [`check_memory`] for a whole pipeline, before its text encoder loads: the larger of the
/// encoder alone and the transformer(s) with the VAE.
fn check_pipeline_memory(args: &RecordArgs, dir: &Path, dtype: DType, device: &Device) -> Result<()> {
    let folder = PipelineFolder::open(dir)?;
    let Some(size) = args.size else { return Ok(()) };
    let memory = estimate_pipeline(&folder, dtype, size, args.max_text_len)?;
    let needs = format!(
        "{} at its peak (text encoder {}, then transformer {} and VAE {})",
        gib(memory.peak_bytes()),
        gib(memory.encoder.total_bytes()),
        gib(memory.transformer.total_bytes()),
        gib(memory.vae.map_or(0, |vae| vae.total_bytes()))
    );
    if !args.quiet {
        eprintln!("the run needs about {needs}");
    }
    if let (Device::Cpu, Some(available)) = (device, available_memory_bytes())
        && memory.peak_bytes() > available
    {
        bail!(
            "the run needs about {needs}, but only {} is free: try --dtype bf16, a smaller --size or \
             --max-text-len, or a GPU (--device cuda)",
            gib(available)
        );
    }
    Ok(())
}

/// The transformer folder, the sampler and the prompt embeddings (positive, negative) a run
/// uses: from a pipeline folder (the prompt encoded by its text encoder, which is freed before
/// the transformer loads), or from the files given.
struct RunInputs {
    model_dir: PathBuf,
    scheduler: SchedulerKind,
    shift: f64,
    prompt_embeds: Tensor,
    negative_prompt_embeds: Option<Tensor>,
    /// What the file says the embeddings came from.
    embeddings_source: String,
    /// The pipeline's VAE folder, when steps are to be decoded.
    vae_dir: Option<PathBuf>,
    /// The pipeline's VAE folder, when an image is to be encoded as the first frame.
    image_vae_dir: Option<PathBuf>,
    /// Wan2.2 A14B's low-noise expert folder and `boundary_ratio`.
    low_noise_expert: Option<(PathBuf, f64)>,
}

fn run_inputs(args: &RecordArgs, dtype: DType, device: &Device) -> Result<RunInputs> {
    let Some(dir) = &args.pipeline else {
        let model_dir = args.model.clone().context("--model or --pipeline is required")?;
        let embeds_path = args.prompt_embeds.clone().context("--prompt-embeds or --pipeline is required")?;
        let prompt_embeds = read_tensor(&embeds_path, "prompt_embeds", 3, device)?;
        let negative_prompt_embeds = match &args.negative_prompt_embeds {
            Some(path) => Some(read_tensor(path, "prompt_embeds", 3, device)?),
            None => None,
        };
        let name = embeds_path
            .file_name()
            .map_or_else(|| embeds_path.display().to_string(), |n| n.to_string_lossy().into());
        return Ok(RunInputs {
            model_dir,
            scheduler: args.scheduler.unwrap_or(SchedulerKind::UniPc),
            shift: args.shift.context("--shift is required without --pipeline")?,
            prompt_embeds,
            negative_prompt_embeds,
            embeddings_source: format!("file:{name}"),
            vae_dir: None,
            image_vae_dir: None,
            low_noise_expert: None,
        });
    };
    let folder = PipelineFolder::open(dir)?;
    let prompt = args.prompt.as_deref().context("--prompt is required with --pipeline")?;
    if args.image.is_some() && !folder.takes_image() {
        bail!(
            "--image: {} is a text-to-video pipeline (no `expand_timesteps`); image-to-video runs with Wan2.2 TI2V",
            dir.display()
        );
    }
    if args.image.is_none() && args.condition_latent.is_none() && folder.needs_image() {
        bail!("{} is an image-to-video pipeline: give --image FILE, the first frame", dir.display());
    }
    // As diffusers' pipeline: with guidance, the negative prompt (empty by default) too.
    let mut prompts = vec![prompt];
    if args.guidance > 1.0 {
        prompts.push(args.negative_prompt.as_deref().unwrap_or(""));
    }
    // Read from the embedding cache where encoded before; otherwise the encoder loads (and is
    // dropped before the transformer loads).
    let cache = EmbeddingCache::for_user();
    let load = || PromptEncoder::load(&folder.tokenizer, &folder.text_encoder, dtype, device);
    let parts = (folder.text_encoder.as_path(), folder.tokenizer.as_path());
    let mut embeddings =
        encode_prompts(&prompts, args.max_text_len, parts, cache.as_ref(), load, (dtype, device))
            .with_context(|| format!("encoding the prompt with {}", folder.text_encoder.display()))?
            .into_iter();
    let prompt_embeds = embeddings.next().context("the prompt was not encoded")?;
    let negative_prompt_embeds = embeddings.next();
    Ok(RunInputs {
        model_dir: folder.transformer.clone(),
        scheduler: args.scheduler.unwrap_or(folder.scheduler.kind),
        shift: args.shift.unwrap_or(folder.scheduler.shift),
        prompt_embeds,
        negative_prompt_embeds,
        embeddings_source: format!("umt5:{}", folder.text_encoder.display()),
        vae_dir: (!args.decode_steps.is_empty()).then(|| folder.vae.clone()),
        image_vae_dir: args.image.is_some().then(|| folder.vae.clone()),
        low_noise_expert: folder.transformer_2.clone().zip(folder.boundary_ratio),
    })
}

/// The run's transformer and, for Wan2.2 A14B, its low-noise expert with `boundary_ratio`.
fn load_transformers(inputs: &RunInputs, dtype: DType, device: &Device) -> Result<LoadedTransformers> {
    let model = WanTransformer::load(&inputs.model_dir, dtype, device)
        .with_context(|| format!("loading the model from {}", inputs.model_dir.display()))?;
    let low_noise_expert = match &inputs.low_noise_expert {
        Some((dir, boundary_ratio)) => {
            let low_noise = WanTransformer::load(dir, dtype, device)
                .with_context(|| format!("loading the low-noise expert from {}", dir.display()))?;
            Some((Arc::new(low_noise), *boundary_ratio))
        }
        None => None,
    };
    Ok((Arc::new(model), low_noise_expert))
}

/// A transformer, and the low-noise expert with its boundary where there are two.
type LoadedTransformers = (Arc<WanTransformer>, Option<(Arc<WanTransformer>, f64)>);

pub fn run(args: &RecordArgs) -> Result<()> {
    let device = device_named(&args.device)?;
    let dtype = compute_dtype(args.dtype);
    match &args.pipeline {
        Some(dir) => check_pipeline_memory(args, dir, dtype, &device)?,
        None => check_memory(
            args,
            args.model.as_deref().context("--model or --pipeline is required")?,
            dtype,
            &device,
        )?,
    }
    let inputs = run_inputs(args, dtype, &device)?;
    let (model, low_noise_expert) = load_transformers(&inputs, dtype, &device)?;
    let prompt_embeds = inputs.prompt_embeds.to_dtype(DType::F32)?;
    if let Some(late) = args.decode_steps.iter().find(|&&step| step >= args.steps) {
        bail!("--decode-steps {late}: the run has steps 0 to {}", args.steps.saturating_sub(1));
    }
    let vae = match &inputs.vae_dir {
        Some(dir) => Some(
            WanVae::load(dir, dtype, &device)
                .with_context(|| format!("loading the VAE from {}", dir.display()))?,
        ),
        None => None,
    };
    let negative_prompt_embeds = inputs.negative_prompt_embeds.clone();
    let given_noise = match &args.noise {
        Some(path) => Some(read_tensor(path, "noise", 4, &device)?),
        None => None,
    };
    let latent_shape = latent_shape(args, &model, given_noise.as_ref())?;
    let condition_latent = match (&args.condition_latent, &args.image, &inputs.image_vae_dir) {
        (Some(path), _, _) => Some(read_tensor(path, "condition_latent", 4, &device)?),
        (None, Some(image), Some(vae_dir)) => {
            Some(encode_first_frame(image, vae_dir, latent_shape, dtype, &device)?)
        }
        _ => None,
    };
    let capture: CaptureSpec = match &args.capture {
        Some(text) => text.parse().context("--capture")?,
        None => CaptureSpec::default(),
    };
    let settings = SessionSettings {
        steps: args.steps,
        shift: inputs.shift,
        scheduler: inputs.scheduler,
        guidance_scale: args.guidance,
        capture,
    };
    let conditioning = Arc::new(Conditioning { prompt_embeds, negative_prompt_embeds, condition_latent });
    let noises: Vec<(NoiseSource, trajectory::NoiseSource)> = match given_noise {
        Some(noise) => vec![(NoiseSource::Given(noise), trajectory::NoiseSource::Given)],
        None => {
            args.seeds.iter().map(|&s| (NoiseSource::Seed(s), trajectory::NoiseSource::RngSeed(s))).collect()
        }
    };

    let progress = progress_bar(args.quiet, (noises.len() * args.steps) as u64, 0, "steps");
    let mut recorder: Option<Recorder> = None;
    let mut timings = StepTimings { print: args.timings, steps: Vec::new() };
    for (noise, noise_record) in noises {
        let mut session = SamplingSession::new(
            Arc::clone(&model),
            Arc::clone(&conditioning),
            settings.clone(),
            latent_shape,
            &noise,
        )?;
        if let Some((low_noise, boundary_ratio)) = &low_noise_expert {
            session = session.with_low_noise_expert(Arc::clone(low_noise), *boundary_ratio)?;
        }
        let recorder = recorder
            .get_or_insert_with(|| Recorder::new(&session, provenance(args, &inputs), storage(args.store)));
        let seed_idx = recorder.add_seed(noise_record, None);
        progress.set_message(format!("seed {seed_idx}"));
        while !session.is_finished() {
            let started = Instant::now();
            let record =
                session.step().with_context(|| format!("seed {seed_idx}, step {}", session.step_idx()))?;
            timings.step(seed_idx, record.step_idx, started.elapsed());
            recorder.record_step(seed_idx, &record);
            if let Some(vae) = &vae
                && args.decode_steps.contains(&record.step_idx)
            {
                let started = Instant::now();
                let video = vae.decode_latents(&record.x0)?;
                timings.decode(seed_idx, record.step_idx, started.elapsed());
                recorder.record_video(seed_idx, record.step_idx, video, "AutoencoderKLWan")?;
            }
            progress.inc(1);
        }
        recorder.finish_seed(seed_idx, session.latents()?);
    }
    progress.finish_and_clear();
    timings.summary();
    let recorder = recorder.context("nothing to record: give --seed or --noise")?;
    recorder.write(&args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// `--timings`: each step's and decode's wall time as it happens, and the median step.
struct StepTimings {
    print: bool,
    steps: Vec<Duration>,
}

impl StepTimings {
    fn step(&mut self, seed_idx: usize, step_idx: usize, took: Duration) {
        if self.print {
            eprintln!("seed {seed_idx} step {step_idx}: {:.1} ms", took.as_secs_f64() * 1e3);
            self.steps.push(took);
        }
    }

    fn decode(&self, seed_idx: usize, step_idx: usize, took: Duration) {
        if self.print {
            eprintln!("seed {seed_idx} decode of step {step_idx}: {:.1} ms", took.as_secs_f64() * 1e3);
        }
    }

    /// The median of the steps after each run's first (which pays for warm-up), or of all.
    fn summary(&mut self) {
        if !self.print || self.steps.is_empty() {
            return;
        }
        let skip = usize::from(self.steps.len() > 1);
        let mut steps = self.steps[skip..].to_vec();
        steps.sort();
        let median = steps[steps.len() / 2];
        let left_out = if skip == 1 { " (the first left out)" } else { "" };
        eprintln!("median step: {:.1} ms over {} steps{left_out}", median.as_secs_f64() * 1e3, steps.len());
    }
}

/// The clean first latent frame `[z, 1, h, w]` of an image-to-video run: the image brought to
/// the video's size (`h` x `w` latent pixels times the VAE's factor) and encoded by the
/// pipeline's VAE (whose encoder is freed before sampling).
fn encode_first_frame(
    image: &Path,
    vae_dir: &Path,
    [_, _, height, width]: [usize; 4],
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let encoding = WanVaeEncoding::load(vae_dir, dtype, device)
        .with_context(|| format!("loading the VAE's encoder from {}", vae_dir.display()))?;
    let factor = encoding.spatial_factor();
    let frame = load_first_frame(image, [height * factor, width * factor], device)?;
    encoding.encode_video(&frame).with_context(|| format!("encoding {} with the VAE", image.display()))
}

fn latent_shape(args: &RecordArgs, model: &WanTransformer, noise: Option<&Tensor>) -> Result<[usize; 4]> {
    if let Some(noise) = noise {
        let dims: [usize; 4] = noise.dims().try_into().context("the noise must be [C, F, H, W]")?;
        if args.size.is_some_and(|[f, h, w]| [f, h, w] != dims[1..]) {
            bail!("--size {:?} disagrees with the noise's shape {dims:?}", args.size);
        }
        return Ok(dims);
    }
    let Some([frames, height, width]) = args.size else {
        bail!("--size FxHxW is required with --seed (the latent's frames, height and width)");
    };
    Ok([model.config().in_channels, frames, height, width])
}

fn provenance(args: &RecordArgs, inputs: &RunInputs) -> RunProvenance {
    let mut provenance =
        stepscope::viewer::live::provenance(&inputs.model_dir, Path::new(""), args.prompt.clone());
    provenance.prompt_embeddings.clone_from(&inputs.embeddings_source);
    provenance
}

fn storage(store: StoreDtype) -> StorageDtype {
    match store {
        StoreDtype::F32 => StorageDtype::F32,
        StoreDtype::F16 => StorageDtype::F16,
    }
}
