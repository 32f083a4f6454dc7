//! Held-out evaluation: sample task instances with the engine's own sampler (as the app does)
//! and score the results with the tasks' rule-based scorers.
use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;

use super::batch::TRAINING_SEED_BIT;
use super::error::{Result, TrainingError};
use crate::model::WanTransformer;
use crate::scheduler::SchedulerKind;
use crate::session::{CaptureSpec, Conditioning, NoiseSource, SamplingSession, SessionSettings};
use crate::tasks::{TaskKind, TaskParams, TaskVideo};

/// How instances are sampled: the app's defaults are 20 UniPC steps at shift 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSettings {
    pub steps: usize,
    pub shift: f64,
    pub scheduler: SchedulerKind,
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self { steps: 20, shift: 3.0, scheduler: SchedulerKind::UniPc }
    }
}

/// The outcome over a set of held-out instances.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub task: TaskKind,
    pub params: TaskParams,
    pub count: usize,
    /// Instances whose final video shows exactly the answer.
    pub solved: usize,
    /// Mean scorer value in `[0, 1]`.
    pub mean_score: f32,
}

impl EvalResult {
    /// Fraction solved.
    #[must_use]
    pub fn solve_rate(&self) -> f64 {
        self.solved as f64 / self.count.max(1) as f64
    }
}

/// Samples the instances with `seeds` (held out: below [`TRAINING_SEED_BIT`]) of `task` at
/// `params` from `model` with `prompt` `[1, L, text_dim]`, the instance's seed as noise seed,
/// and scores each final video.
pub fn evaluate(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    task: TaskKind,
    params: TaskParams,
    seeds: Range<u64>,
    sampler: SamplerSettings,
) -> Result<EvalResult> {
    if seeds.end > TRAINING_SEED_BIT {
        return Err(TrainingError::Setup("held-out seeds must be below 2^63".to_owned()));
    }
    let settings = SessionSettings {
        steps: sampler.steps,
        shift: sampler.shift,
        scheduler: sampler.scheduler,
        guidance_scale: 1.0,
        capture: CaptureSpec::default(),
    };
    let (mut solved, mut score_sum, mut count) = (0, 0.0f32, 0);
    for seed in seeds {
        let instance = task.generate(seed, &params)?;
        let [channels, frames, height, width] = instance.ground_truth.shape();
        let conditioning = Arc::new(Conditioning {
            prompt_embeds: prompt.clone(),
            negative_prompt_embeds: None,
            condition_latent: Some(instance.first_frame.to_tensor(model.device())?),
        });
        let mut session = SamplingSession::new(
            Arc::clone(model),
            conditioning,
            settings.clone(),
            [channels, frames, height, width],
            &NoiseSource::Seed(seed),
        )?;
        while !session.is_finished() {
            session.step()?;
        }
        let video = TaskVideo::from_tensor(&session.latents()?)?;
        let score = instance.score(&video)?;
        solved += usize::from(score.solved);
        score_sum += score.value;
        count += 1;
    }
    Ok(EvalResult { task, params, count, solved, mean_score: score_sum / count.max(1) as f32 })
}

/// The inference model (fused kernels) over `weights` (model keys; extra keys are ignored).
pub fn inference_model(
    config: &crate::model::WanConfig,
    weights: &std::collections::BTreeMap<String, Tensor>,
    device: &candle_core::Device,
) -> Result<WanTransformer> {
    let tensors: std::collections::HashMap<String, Tensor> =
        weights.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, device);
    Ok(WanTransformer::new(config.clone(), vb)?)
}
