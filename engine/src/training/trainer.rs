//! The training loop, one optimiser step at a time, with checkpoints that resume exactly.
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::batch::{draw_batch, flow_matching_loss};
use super::checkpoint::{
    CHECKPOINT_VERSION, CheckpointTensors, TrainState, export_model, load_checkpoint, save_checkpoint,
};
use super::config::TrainConfig;
use super::error::{Result, TrainingError};
use super::optim::{AdamW, Ema, clip_scale};
use super::params::Parameters;
use crate::model::{ForwardInput, ForwardProbe, WanTransformer};
use crate::tasks::TaskKind;
use crate::tasks::rng::SplitMix64;

/// What one optimiser step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Index of this step (0-based).
    pub step_idx: u64,
    pub task: TaskKind,
    pub size: usize,
    pub loss: f32,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    pub learning_rate: f64,
}

/// A training run in memory: parameters, optimiser, EMA, and the data stream.
#[derive(Debug)]
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    params: Parameters,
    /// The differentiable transformer over `params`.
    model: WanTransformer,
    optim: AdamW,
    ema: Ema,
    rng: SplitMix64,
    step_idx: u64,
    samples: u64,
}

impl Trainer {
    /// A fresh run of `config`.
    pub fn new(config: TrainConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let params = Parameters::init(&config, device)?;
        let optim = AdamW::new(&params, config.weight_decay)?;
        let ema = Ema::new(&params, config.ema_decay)?;
        let model = params.model(&config.model, device)?;
        let rng = SplitMix64::new(config.seed);
        Ok(Self { config, device: device.clone(), params, model, optim, ema, rng, step_idx: 0, samples: 0 })
    }

    /// Continues the run saved in `dir` (see [`Trainer::save`]).
    pub fn resume(dir: &Path, device: &Device) -> Result<Self> {
        let (state, tensors) = load_checkpoint(dir, device)?;
        let config = state.config;
        config.validate()?;
        let params = Parameters::from_tensors(&config, tensors.params)?;
        let mut optim = AdamW::new(&params, config.weight_decay)?;
        let mut ema = Ema::new(&params, config.ema_decay)?;
        for (key, _) in params.iter() {
            let missing = || TrainingError::Checkpoint {
                path: dir.join(super::checkpoint::CHECKPOINT_FILE),
                what: format!("no optimiser or EMA state for `{key}`"),
            };
            optim.first_moment.insert(key.clone(), tensors.adam_m.get(key).ok_or_else(missing)?.clone());
            optim.second_moment.insert(key.clone(), tensors.adam_v.get(key).ok_or_else(missing)?.clone());
            ema.average.insert(key.clone(), tensors.ema.get(key).ok_or_else(missing)?.clone());
        }
        optim.updates = state.adam_updates;
        ema.updates = state.ema_updates;
        let model = params.model(&config.model, device)?;
        Ok(Self {
            config,
            device: device.clone(),
            params,
            model,
            optim,
            ema,
            rng: SplitMix64::new(state.rng_state),
            step_idx: state.step_idx,
            samples: state.samples,
        })
    }

    #[must_use]
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Steps taken so far.
    #[must_use]
    pub fn step_idx(&self) -> u64 {
        self.step_idx
    }

    /// Instances trained on so far.
    #[must_use]
    pub fn samples(&self) -> u64 {
        self.samples
    }

    #[must_use]
    pub fn parameters(&self) -> &Parameters {
        &self.params
    }

    /// The differentiable model over the current (not averaged) weights.
    #[must_use]
    pub fn model(&self) -> &WanTransformer {
        &self.model
    }

    /// The learning rate of step `step_idx`: linear warm-up, then constant.
    #[must_use]
    pub fn learning_rate(&self, step_idx: u64) -> f64 {
        let warmup = self.config.warmup_steps.max(1) as f64;
        self.config.learning_rate * ((step_idx + 1) as f64 / warmup).min(1.0)
    }

    /// One optimiser step on a fresh batch.
    pub fn step(&mut self) -> Result<StepStats> {
        let batch = draw_batch(&self.config, &mut self.rng, &self.device)?;
        let prompt = self.params.prompt(batch.task.name())?.as_tensor();
        let (batch_size, ..) = batch.latents.dims5()?;
        let text = prompt.broadcast_as((batch_size, prompt.dim(1)?, prompt.dim(2)?))?;
        let input = ForwardInput { latents: &batch.latents, timesteps: &batch.timesteps, text_embeds: &text };
        let output = self.model.forward(&input, &ForwardProbe::default())?;
        let loss = flow_matching_loss(&output.velocity, &batch)?;
        let loss_value = loss.to_scalar::<f32>()?;
        if !loss_value.is_finite() {
            return Err(TrainingError::Diverged { step_idx: self.step_idx, loss: loss_value });
        }
        let grads = loss.backward()?;
        let (grad_scale, grad_norm) = clip_scale(&self.params, &grads, self.config.grad_clip)?;
        let learning_rate = self.learning_rate(self.step_idx);
        self.optim.step(&self.params, &grads, learning_rate, grad_scale)?;
        self.ema.update(&self.params)?;
        let stats = StepStats {
            step_idx: self.step_idx,
            task: batch.task,
            size: batch.size,
            loss: loss_value,
            grad_norm,
            learning_rate,
        };
        self.step_idx += 1;
        self.samples += batch_size as u64;
        Ok(stats)
    }

    /// The EMA weights (model keys and `prompts.{task}`).
    #[must_use]
    pub fn ema_weights(&self) -> &std::collections::BTreeMap<String, Tensor> {
        &self.ema.average
    }

    /// Writes `dir/model/` (the EMA weights, diffusers layout, and prompts) and then
    /// `dir/checkpoint.safetensors`, each atomically; returns the model folder.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|source| TrainingError::Io {
            path: dir.to_owned(),
            action: "create the folder",
            cause: source,
        })?;
        let model_dir = export_model(dir, &self.config.model, &self.ema.average)?;
        let state = TrainState {
            version: CHECKPOINT_VERSION,
            step_idx: self.step_idx,
            samples: self.samples,
            rng_state: self.rng.state(),
            adam_updates: self.optim.updates,
            ema_updates: self.ema.updates,
            config: self.config.clone(),
        };
        let tensors = CheckpointTensors {
            params: self.params.snapshot()?,
            adam_m: self.optim.first_moment.clone(),
            adam_v: self.optim.second_moment.clone(),
            ema: self.ema.average.clone(),
        };
        save_checkpoint(dir, &state, &tensors)?;
        Ok(model_dir)
    }
}
