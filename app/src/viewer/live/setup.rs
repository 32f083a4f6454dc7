//! What a live run is made of: the model folder, prompt embeddings, noise seed, size and
//! schedule the user picks in the "New live run" window. Persisted, so the next run starts
//! from the last one's choices.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use stepscope_engine::model::WanTransformer;
use stepscope_engine::recording::RunProvenance;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{CaptureSpec, Conditioning, NoiseSource, SessionSettings};
use stepscope_engine::tensor_file::read_tensor;
use stepscope_engine::worker::RunRequest;

/// The choices behind a live run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveSetup {
    /// A diffusers Wan transformer folder (config.json + safetensors weights).
    pub model_dir: PathBuf,
    /// A safetensors file holding `prompt_embeds` `[1, L, text_dim]`.
    pub prompt_embeds: PathBuf,
    /// The noise seed of seed 0.
    pub rng_seed: u64,
    /// Latent frames, height and width.
    pub size: [usize; 3],
    pub steps: usize,
    pub shift: f64,
    pub scheduler: SchedulerKind,
    /// What to capture inside the network, in `record --capture` syntax; empty for nothing.
    pub capture: String,
}

impl Default for LiveSetup {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::new(),
            prompt_embeds: PathBuf::new(),
            rng_seed: 0,
            size: [3, 16, 16],
            steps: 20,
            shift: 3.0,
            scheduler: SchedulerKind::UniPc,
            capture: "token_norm,pca3@all".to_owned(),
        }
    }
}

impl LiveSetup {
    /// Loads the model and the prompt embeddings (on the CPU, in f32) and checks the choices,
    /// giving the request that starts the run.
    pub fn to_request(&self) -> Result<RunRequest> {
        let device = Device::Cpu;
        let model = WanTransformer::load(&self.model_dir, DType::F32, &device)
            .with_context(|| format!("loading the model from {}", self.model_dir.display()))?;
        let prompt_embeds = read_tensor(&self.prompt_embeds, "prompt_embeds", 3, &device)?;
        let capture: CaptureSpec = self.capture.parse().context("the capture list")?;
        let [frames, height, width] = self.size;
        let latent_shape = [model.config().in_channels, frames, height, width];
        Ok(RunRequest {
            model: Arc::new(model),
            conditioning: Arc::new(Conditioning {
                prompt_embeds,
                negative_prompt_embeds: None,
                condition_latent: None,
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
            provenance: provenance(&self.model_dir, &self.prompt_embeds, None),
        })
    }
}

/// Where a run's model and prompt came from, for its trajectory file: the model folder, its
/// `config.json` as written, and the prompt embeddings' file name.
#[must_use]
pub fn provenance(model_dir: &Path, prompt_embeds: &Path, prompt: Option<String>) -> RunProvenance {
    let model_config = std::fs::read_to_string(model_dir.join("config.json"))
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
