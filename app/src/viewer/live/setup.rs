//! What a live run is made of: the model folder, prompt embeddings, noise seed, size and
//! schedule the user picks in the "New live run" window. Persisted, so the next run starts
//! from the last one's choices.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use stepscope_engine::analysis::task_info;
use stepscope_engine::device::device_named;
use stepscope_engine::model::WanTransformer;
use stepscope_engine::model::config::{MAX_CONFIG_BYTES, read_capped};
use stepscope_engine::pipeline::PipelineFolder;
use stepscope_engine::recording::RunProvenance;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{CaptureSpec, Conditioning, NoiseSource, SessionSettings};
use stepscope_engine::tasks::{TaskInstance, TaskKind, TaskParams};
use stepscope_engine::tensor_file::read_tensor;
use stepscope_engine::text::{EmbeddingCache, PromptEncoder, encode_prompts};
use stepscope_engine::training::checkpoint::{PROMPTS_FILE, load_prompts};
use stepscope_engine::vae::WanVaeEncoding;
use stepscope_engine::worker::RunRequest;

use crate::first_frame::load_first_frame;

/// The choices behind a live run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveSetup {
    /// A diffusers Wan transformer folder (config.json + safetensors weights), or a whole
    /// pipeline folder (`model_index.json`: the prompt is then typed, not embedded).
    pub model_dir: PathBuf,
    /// A safetensors file holding `prompt_embeds` `[1, L, text_dim]` (a transformer folder).
    pub prompt_embeds: PathBuf,
    /// The prompt, encoded by a pipeline folder's text encoder.
    pub prompt: String,
    /// The negative prompt (used when `guidance` is above 1).
    pub negative_prompt: String,
    /// Classifier-free guidance scale of a pipeline run (1: none).
    pub guidance: f64,
    /// The first frame of an image-to-video pipeline run (Wan2.2 TI2V); empty for none.
    pub image: PathBuf,
    /// The noise seed of seed 0.
    pub rng_seed: u64,
    /// Latent frames, height and width.
    pub size: [usize; 3],
    pub steps: usize,
    pub shift: f64,
    pub scheduler: SchedulerKind,
    /// What to capture inside the network, in `record --capture` syntax; empty for nothing.
    pub capture: String,
    /// Where the run computes: `auto`, `cpu`, `cuda:N` or `metal`.
    pub device: String,
    /// A built-in task instance to solve: its puzzle becomes the clean first frame, the model
    /// folder's `prompts.safetensors` gives the prompt, and `size` follows the puzzle.
    pub task: Option<LiveTask>,
}

/// A built-in task instance for a live run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTask {
    /// `maze`, `symmetry`, `gravity`, `flood_fill` or `rotation`.
    pub name: String,
    /// Cells per side.
    pub size: usize,
    /// The instance's seed (the evaluation's held-out seeds are `0..N`).
    pub seed: u64,
}

impl Default for LiveSetup {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::new(),
            prompt_embeds: PathBuf::new(),
            prompt: String::new(),
            negative_prompt: String::new(),
            guidance: 1.0,
            image: PathBuf::new(),
            rng_seed: 0,
            size: [3, 16, 16],
            steps: 20,
            shift: 3.0,
            scheduler: SchedulerKind::UniPc,
            capture: "token_norm,pca3@all".to_owned(),
            device: "auto".to_owned(),
            task: None,
        }
    }
}

/// The text length a live pipeline run pads its prompt to (the Wan pipelines' default).
pub const PIPELINE_TEXT_LEN: usize = 512;

/// The built-in model (`assets/model` in the repository), trained on the tasks.
#[must_use]
pub fn builtin_model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/model");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

impl LiveSetup {
    /// The session the app opens on: a 5x5 maze for the built-in model, 5 frames, the sampler it
    /// was evaluated with, every layer captured. Instance 47 with its own noise seed, as `eval`
    /// samples it: a held-out puzzle (absent from the shipped model's training stream) picked by
    /// measurement (`eval --per-instance`, README "The window") among the instances that commit
    /// to their answer in the middle of the run, so that the early steps draw a competing route
    /// that the later ones drop.
    pub const DEFAULT_MAZE_INSTANCE: u64 = 47;

    #[must_use]
    pub fn builtin_maze() -> Self {
        Self {
            model_dir: builtin_model_dir(),
            prompt_embeds: PathBuf::new(),
            prompt: String::new(),
            negative_prompt: String::new(),
            guidance: 1.0,
            image: PathBuf::new(),
            rng_seed: Self::DEFAULT_MAZE_INSTANCE,
            size: [5, 12, 12],
            steps: 20,
            shift: 3.0,
            scheduler: SchedulerKind::UniPc,
            capture: "x0,decoded,token_norm,pca3@all".to_owned(),
            device: "auto".to_owned(),
            task: Some(LiveTask { name: "maze".to_owned(), size: 5, seed: Self::DEFAULT_MAZE_INSTANCE }),
        }
    }

    /// The task instance this run solves, if any (`size[0]` frames).
    pub fn task_instance(&self) -> Result<Option<TaskInstance>> {
        let Some(task) = &self.task else { return Ok(None) };
        let kind = TaskKind::from_name(&task.name).context("the task")?;
        let params = TaskParams { size: task.size, frames: self.size[0] };
        kind.generate(task.seed, &params)
            .map(Some)
            .with_context(|| format!("generating {} {}", task.name, task.seed))
    }

    /// Whether the model folder is a whole pipeline (the prompt is typed).
    #[must_use]
    pub fn is_pipeline(&self) -> bool {
        self.model_dir.join("model_index.json").is_file()
    }

    /// A pipeline folder's run: the typed prompt (and, with guidance, the negative one)
    /// encoded by its UMT5, which is freed before the transformer loads; its scheduler config
    /// sets the sampler and the shift.
    fn pipeline_request(&self, device: &Device) -> Result<RunRequest> {
        let folder = PipelineFolder::open(&self.model_dir)?;
        let has_image = !self.image.as_os_str().is_empty();
        if has_image && !folder.takes_image() {
            bail!("a text-to-video pipeline takes no image: clear the image, or pick a Wan2.2 TI2V folder");
        }
        if !has_image && folder.needs_image() {
            bail!("an image-to-video pipeline: pick the first frame's image");
        }
        let mut prompts = vec![self.prompt.as_str()];
        if self.guidance > 1.0 {
            prompts.push(&self.negative_prompt);
        }
        let load = || PromptEncoder::load(&folder.tokenizer, &folder.text_encoder, DType::F32, device);
        let parts = (folder.text_encoder.as_path(), folder.tokenizer.as_path());
        let cache = EmbeddingCache::for_user();
        let mut embeddings =
            encode_prompts(&prompts, PIPELINE_TEXT_LEN, parts, cache.as_ref(), load, (DType::F32, device))
                .with_context(|| format!("encoding the prompt with {}", folder.text_encoder.display()))?
                .into_iter();
        let prompt_embeds = embeddings.next().context("the prompt was not encoded")?;
        let negative_prompt_embeds = embeddings.next();
        let model = WanTransformer::load(&folder.transformer, DType::F32, device)
            .with_context(|| format!("loading the transformer of {}", self.model_dir.display()))?;
        let low_noise_expert = match (&folder.transformer_2, folder.boundary_ratio) {
            (Some(dir), Some(boundary_ratio)) => {
                let low_noise = WanTransformer::load(dir, DType::F32, device)
                    .with_context(|| format!("loading the low-noise expert {}", dir.display()))?;
                Some((Arc::new(low_noise), boundary_ratio))
            }
            _ => None,
        };
        let [frames, height, width] = self.size;
        let latent_shape = [model.config().in_channels, frames, height, width];
        let condition_latent = if has_image {
            let encoding = WanVaeEncoding::load(&folder.vae, DType::F32, device)
                .with_context(|| format!("loading the VAE's encoder from {}", folder.vae.display()))?;
            let factor = encoding.spatial_factor();
            let frame = load_first_frame(&self.image, [height * factor, width * factor], device)?;
            Some(
                encoding
                    .encode_video(&frame)
                    .with_context(|| format!("encoding {} with the VAE", self.image.display()))?,
            )
        } else {
            None
        };
        let mut provenance = provenance(&folder.transformer, Path::new(""), Some(self.prompt.clone()));
        provenance.prompt_embeddings = format!("umt5:{}", folder.text_encoder.display());
        Ok(RunRequest {
            model: Arc::new(model),
            conditioning: Arc::new(Conditioning { prompt_embeds, negative_prompt_embeds, condition_latent }),
            settings: SessionSettings {
                steps: self.steps,
                shift: folder.scheduler.shift,
                scheduler: folder.scheduler.kind,
                guidance_scale: self.guidance,
                capture: self.capture.parse().context("the capture list")?,
            },
            latent_shape,
            noise: NoiseSource::Seed(self.rng_seed),
            provenance,
            low_noise_expert,
        })
    }

    /// Loads the model and the prompt embeddings (on the CPU, in f32) and checks the choices,
    /// giving the request that starts the run.
    pub fn to_request(&self) -> Result<RunRequest> {
        let device = device_named(&self.device).context("the device")?;
        if self.task.is_none() && self.is_pipeline() {
            return self.pipeline_request(&device);
        }
        let model = WanTransformer::load(&self.model_dir, DType::F32, &device)
            .with_context(|| format!("loading the model from {}", self.model_dir.display()))?;
        let capture: CaptureSpec = self.capture.parse().context("the capture list")?;
        let instance = self.task_instance()?;
        let (prompt_embeds, condition_latent, latent_shape, provenance) = match &instance {
            None => {
                let prompt_embeds = read_tensor(&self.prompt_embeds, "prompt_embeds", 3, &device)?;
                let [frames, height, width] = self.size;
                let shape = [model.config().in_channels, frames, height, width];
                (prompt_embeds, None, shape, provenance(&self.model_dir, &self.prompt_embeds, None))
            }
            Some(instance) => {
                let prompts_path = self.model_dir.join(PROMPTS_FILE);
                let mut prompts = load_prompts(&prompts_path, &device).with_context(|| {
                    format!("a task run needs the model's learned prompts, {}", prompts_path.display())
                })?;
                let name = instance.kind.name();
                let prompt = prompts.remove(name).with_context(|| {
                    format!(
                        "{} has no prompt for {name}: the model was not trained on it",
                        prompts_path.display()
                    )
                })?;
                let first_frame = instance.first_frame.to_tensor(&device)?;
                let [channels, _, height, width] = instance.ground_truth.shape();
                let shape = [channels, instance.params.frames, height, width];
                let mut provenance =
                    provenance(&self.model_dir, &prompts_path, Some(instance.prompt.clone()));
                provenance.prompt_embeddings = format!("file:{PROMPTS_FILE}#{name}");
                provenance.task = Some(task_info(instance));
                (prompt, Some(first_frame), shape, provenance)
            }
        };
        if latent_shape[0] != model.config().in_channels {
            bail!(
                "the task's videos have {} channels, the model takes {}",
                latent_shape[0],
                model.config().in_channels
            );
        }
        Ok(RunRequest {
            model: Arc::new(model),
            conditioning: Arc::new(Conditioning {
                prompt_embeds,
                negative_prompt_embeds: None,
                condition_latent,
            }),
            settings: SessionSettings {
                steps: self.steps,
                shift: self.shift,
                scheduler: self.scheduler,
                guidance_scale: 1.0,
                capture,
            },
            latent_shape,
            noise: NoiseSource::Seed(self.rng_seed),
            provenance,
            low_noise_expert: None,
        })
    }
}

/// Where a run's model and prompt came from, for its trajectory file: the model folder, its
/// `config.json` as written, and the prompt embeddings' file name.
#[must_use]
pub fn provenance(model_dir: &Path, prompt_embeds: &Path, prompt: Option<String>) -> RunProvenance {
    let config_path = model_dir.join("config.json");
    let model_config = read_capped(&config_path, MAX_CONFIG_BYTES)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let embeds_name = prompt_embeds
        .file_name()
        .map_or_else(|| prompt_embeds.display().to_string(), |name| name.to_string_lossy().into_owned());
    RunProvenance {
        model_source: model_dir.display().to_string(),
        model_config,
        prompt,
        prompt_embeddings: format!("file:{embeds_name}"),
        task: None,
    }
}
