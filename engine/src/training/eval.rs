//! Held-out evaluation: sample task instances with the engine's own sampler (as the app does)
//! and score the results with the tasks' rule-based scorers.
use std::sync::Arc;

use candle_core::Tensor;

#[cfg(doc)]
use super::batch::TRAINING_SEED_BIT;
use super::error::{Result, TrainingError};
use crate::model::WanTransformer;
use crate::scheduler::SchedulerKind;
use crate::session::{CaptureSpec, Conditioning, NoiseSource, SamplingSession, SessionSettings};
use crate::tasks::{TaskInstance, TaskKind, TaskParams, TaskVideo};

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

/// Which held-out samples to draw: instances `seeds` of `task` at `params` (below 2^32; pick
/// held-out puzzles with [`crate::tasks::held_out_seeds`]), each sampled from
/// `noise_seeds` noise seeds (instance seed `s`, noise index `j`: noise seed `s + j 2^32`; `j = 0`
/// is the instance's own seed, as in the app's default session).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPlan {
    pub task: TaskKind,
    pub params: TaskParams,
    pub seeds: Vec<u64>,
    pub noise_seeds: u64,
    pub sampler: SamplerSettings,
    /// Also score `x0_hat` at every step of every sample ([`EvalResult::steps`]).
    pub per_step: bool,
    /// The scorers' colour tolerance for the verdict ([`crate::tasks::TaskInstance::score_within`]).
    pub tolerance: f32,
    /// More tolerances to score the same samples at ([`EvalResult::other_tolerances`]), so that
    /// one run shows how solve counts and commit steps move with the tolerance.
    pub other_tolerances: Vec<f32>,
}

impl EvalPlan {
    /// Samples in the plan.
    #[must_use]
    pub fn samples(&self) -> u64 {
        (self.seeds.len() as u64).saturating_mul(self.noise_seeds)
    }
}

impl SamplerSettings {
    /// The session settings of this sampler (no guidance), capturing `capture`.
    #[must_use]
    pub fn session_settings(self, capture: CaptureSpec) -> SessionSettings {
        SessionSettings {
            steps: self.steps,
            shift: self.shift,
            scheduler: self.scheduler,
            guidance_scale: 1.0,
            capture,
        }
    }
}

/// How a task instance is posed to the model, as the app poses it: `prompt` `[1, L, text_dim]`
/// and the puzzle as the clean first frame (TI2V).
pub fn task_conditioning(
    prompt: &Tensor,
    instance: &TaskInstance,
    device: &candle_core::Device,
) -> crate::tasks::Result<Arc<Conditioning>> {
    Ok(Arc::new(Conditioning {
        prompt_embeds: prompt.clone(),
        negative_prompt_embeds: None,
        condition_latent: Some(instance.first_frame.to_tensor(device)?),
    }))
}

/// The outcome over a set of held-out instances.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub task: TaskKind,
    pub params: TaskParams,
    /// Instances evaluated.
    pub count: usize,
    /// Samples drawn (instances x noise seeds).
    pub samples: usize,
    /// Samples whose final video shows exactly the answer.
    pub solved: usize,
    /// Instances solved by at least one of their noise seeds.
    pub instances_solved: usize,
    /// Mean scorer value over the samples, in `[0, 1]`.
    pub mean_score: f32,
    /// With [`EvalPlan::per_step`]: how the prediction scored along the steps.
    pub steps: Option<StepCurve>,
    /// Per scorer check, the final videos that fail it (checks in the scorer's order).
    pub failed_checks: Vec<(&'static str, usize)>,
    /// The same samples at each of [`EvalPlan::other_tolerances`].
    pub other_tolerances: Vec<ToleranceOutcome>,
}

/// The samples of an evaluation scored at another colour tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct ToleranceOutcome {
    pub tolerance: f32,
    /// Samples whose final video is solved at this tolerance.
    pub solved: usize,
    /// With [`EvalPlan::per_step`]: the commit steps at this tolerance (see
    /// [`StepCurve::commit_steps`]).
    pub steps: Option<StepCurve>,
}

/// The Chain-of-Steps curve over a set of samples: per step, how well `x0_hat` scores, and per
/// sample the step from which it stays solved (its commit step).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepCurve {
    /// Per step, the sum of the `x0_hat` scores over the samples.
    pub score_sum: Vec<f64>,
    /// Per step, the samples whose `x0_hat` is solved there.
    pub solved: Vec<usize>,
    /// Per sample, its commit step ([`crate::analysis::commit_step`]); `None` if it ends
    /// unsolved.
    pub commit_steps: Vec<Option<usize>>,
}

impl StepCurve {
    /// Adds one sample's scores, one per step.
    pub fn add(&mut self, scores: &[crate::tasks::Score]) {
        if self.score_sum.len() < scores.len() {
            self.score_sum.resize(scores.len(), 0.0);
            self.solved.resize(scores.len(), 0);
        }
        for (step_idx, score) in scores.iter().enumerate() {
            self.score_sum[step_idx] += f64::from(score.value);
            self.solved[step_idx] += usize::from(score.solved);
        }
        let recorded: Vec<Option<crate::tasks::Score>> = scores.iter().cloned().map(Some).collect();
        self.commit_steps.push(crate::analysis::commit_step(&recorded));
    }

    /// Samples added.
    #[must_use]
    pub fn samples(&self) -> usize {
        self.commit_steps.len()
    }

    /// Samples committed at exactly `step_idx`.
    #[must_use]
    pub fn committed_at(&self, step_idx: usize) -> usize {
        self.commit_steps.iter().filter(|&&step| step == Some(step_idx)).count()
    }

    /// The median commit step of the samples that commit (the lower middle for an even
    /// count); `None` if none does.
    #[must_use]
    pub fn median_commit_step(&self) -> Option<usize> {
        let mut steps: Vec<usize> = self.commit_steps.iter().flatten().copied().collect();
        steps.sort_unstable();
        steps.get(steps.len().saturating_sub(1) / 2).copied()
    }
}

impl EvalResult {
    /// Fraction of samples solved.
    #[must_use]
    pub fn solve_rate(&self) -> f64 {
        self.solved as f64 / self.samples.max(1) as f64
    }

    /// Fraction of instances solved by at least one noise seed.
    #[must_use]
    pub fn any_seed_rate(&self) -> f64 {
        self.instances_solved as f64 / self.count.max(1) as f64
    }
}

/// The largest noise-seed count: noise seeds `s + j 2^32` stay below 2^63 for `s < 2^32`.
pub const MAX_NOISE_SEEDS: u64 = 1 << 30;

/// Samples the plan's instances (held out: below [`TRAINING_SEED_BIT`]) from `model` with
/// `prompt` `[1, L, text_dim]` and scores each final video; `on_sample` is called after each
/// sample (for a progress bar).
pub fn evaluate(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    plan: &EvalPlan,
    on_sample: &mut dyn FnMut(),
) -> Result<EvalResult> {
    if let Some(&seed) = plan.seeds.iter().find(|&&seed| seed >= 1 << 32) {
        return Err(TrainingError::Setup(format!(
            "held-out instance seeds must be below 2^32 (got {seed}); training seeds have bit 63 set"
        )));
    }
    if plan.noise_seeds == 0 || plan.noise_seeds > MAX_NOISE_SEEDS {
        return Err(TrainingError::Setup(format!(
            "{} noise seeds: give 1 to {MAX_NOISE_SEEDS}",
            plan.noise_seeds
        )));
    }
    let settings = plan.sampler.session_settings(CaptureSpec::default());
    let mut result = EvalResult {
        task: plan.task,
        params: plan.params,
        count: 0,
        samples: 0,
        solved: 0,
        instances_solved: 0,
        mean_score: 0.0,
        steps: plan.per_step.then(StepCurve::default),
        failed_checks: Vec::new(),
        other_tolerances: plan
            .other_tolerances
            .iter()
            .map(|&tolerance| ToleranceOutcome {
                tolerance,
                solved: 0,
                steps: plan.per_step.then(StepCurve::default),
            })
            .collect(),
    };
    let mut score_sum = 0.0f64;
    let tolerances: Vec<f32> =
        std::iter::once(plan.tolerance).chain(plan.other_tolerances.iter().copied()).collect();
    for &seed in &plan.seeds {
        let instance = plan.task.generate(seed, &plan.params)?;
        let [channels, frames, height, width] = instance.ground_truth.shape();
        let conditioning = task_conditioning(prompt, &instance, model.device())?;
        let mut any_solved = false;
        for noise_idx in 0..plan.noise_seeds {
            let mut session = SamplingSession::new(
                Arc::clone(model),
                Arc::clone(&conditioning),
                settings.clone(),
                [channels, frames, height, width],
                &NoiseSource::Seed(seed + (noise_idx << 32)),
            )?;
            // Per tolerance (the verdict's first), the scores of x0_hat at each step.
            let mut step_scores = vec![Vec::new(); tolerances.len()];
            while !session.is_finished() {
                let record = session.step()?;
                if plan.per_step {
                    let x0 = TaskVideo::from_tensor(&record.x0)?;
                    for (scores, &tolerance) in step_scores.iter_mut().zip(&tolerances) {
                        scores.push(instance.score_within(&x0, tolerance)?);
                    }
                }
            }
            let video = TaskVideo::from_tensor(&session.latents()?)?;
            let score = instance.score_within(&video, plan.tolerance)?;
            if let Some(curve) = &mut result.steps {
                curve.add(&step_scores[0]);
            }
            for ((outcome, scores), &tolerance) in
                result.other_tolerances.iter_mut().zip(&step_scores[1..]).zip(&tolerances[1..])
            {
                outcome.solved += usize::from(instance.score_within(&video, tolerance)?.solved);
                if let Some(curve) = &mut outcome.steps {
                    curve.add(scores);
                }
            }
            count_failed_checks(&mut result.failed_checks, &score);
            any_solved |= score.solved;
            result.solved += usize::from(score.solved);
            score_sum += f64::from(score.value);
            result.samples += 1;
            on_sample();
        }
        result.instances_solved += usize::from(any_solved);
        result.count += 1;
    }
    result.mean_score = (score_sum / result.samples.max(1) as f64) as f32;
    Ok(result)
}

/// Adds `score`'s checks to the per-check failure counts (a check seen first is appended).
fn count_failed_checks(counts: &mut Vec<(&'static str, usize)>, score: &crate::tasks::Score) {
    for &(name, passed) in &score.checks {
        let idx = counts.iter().position(|&(known, _)| known == name).unwrap_or_else(|| {
            counts.push((name, 0));
            counts.len() - 1
        });
        counts[idx].1 += usize::from(!passed);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::Score;

    fn score(value: f32, solved: bool) -> Score {
        Score { value, solved, parts: Vec::new(), checks: Vec::new() }
    }

    #[test]
    fn the_step_curve_sums_scores_and_finds_commit_steps() {
        let mut curve = StepCurve::default();
        curve.add(&[score(0.25, false), score(1.0, true), score(1.0, true)]);
        curve.add(&[score(0.5, false), score(1.0, true), score(0.75, false)]);
        curve.add(&[score(0.75, true), score(1.0, true), score(1.0, true)]);
        assert_eq!(curve.samples(), 3);
        assert_eq!(curve.score_sum, [1.5, 3.0, 2.75]);
        assert_eq!(curve.solved, [1, 3, 2]);
        assert_eq!(curve.commit_steps, [Some(1), None, Some(0)]);
        assert_eq!((curve.committed_at(0), curve.committed_at(1), curve.committed_at(2)), (1, 1, 0));
        assert_eq!(curve.median_commit_step(), Some(0));
        assert_eq!(StepCurve::default().median_commit_step(), None);
    }
}
