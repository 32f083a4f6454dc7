//! The training-free seed ensemble: sample `K` seeds of an instance in lockstep, pool them after
//! each of the first `M` steps, then finish the first seed's trajectory alone. Early steps hold
//! several candidate answers; pooling there merges them before the run commits. Three ways to
//! pool ([`EnsembleMethod`]):
//! - `latent-mean`: every seed's latent becomes the seeds' mean latent. The mean of `K`
//!   independent noises has `1 / K` of their variance, so the merged latent sits below the noise
//!   level its sigma assumes, and after the first merge the seeds are identical;
//! - `x0-mean`: each seed keeps its own noise part and takes the seeds' mean clean prediction:
//!   `x_j <- x_j + (1 - sigma) (mean x0 - x0_j)`, with `x0_j` the seed's `x0_hat` of the step
//!   just taken and `sigma` the noise level reached (the noise part, and so the noise level, is
//!   untouched, and the seeds stay distinct);
//! - `best-of-k`: no pooling; the `K` seeds run to the end apart and the one the model is surest
//!   of wins: the final video whose pixels lie nearest the task's palette (mean distance to the
//!   nearest palette colour; the answer is not looked at).
//!
//! Each instance is also sampled by its first seed alone, at the sampler's steps and at as many
//! steps as the ensemble's model passes (equal compute), so that every comparison is paired.
use std::sync::Arc;

use candle_core::Tensor;

use super::source::AnalysisError;
use crate::model::WanTransformer;
use crate::session::{CaptureSpec, NoiseSource, SamplingSession, SessionError};
use crate::tasks::{TaskKind, TaskParams, TaskVideo};
use crate::training::{SamplerSettings, task_conditioning};

/// How the seeds are pooled (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsembleMethod {
    LatentMean,
    X0Mean,
    BestOfK,
}

impl EnsembleMethod {
    /// The method's name on command lines and in result files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LatentMean => "latent-mean",
            Self::X0Mean => "x0-mean",
            Self::BestOfK => "best-of-k",
        }
    }

    /// Model passes of one ensemble sample of `seeds` seeds merged over `merge_steps` of `steps`.
    #[must_use]
    pub const fn passes(self, seeds: usize, merge_steps: usize, steps: usize) -> usize {
        match self {
            Self::LatentMean | Self::X0Mean => seeds * merge_steps + (steps - merge_steps),
            Self::BestOfK => seeds * steps,
        }
    }
}

/// Which instances, how many seeds, how many merged steps.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsemblePlan {
    pub task: TaskKind,
    pub params: TaskParams,
    /// Instance seeds, below 2^32.
    pub instances: Vec<u64>,
    /// `K` >= 2: seed `j` of instance `s` samples noise seed `s + j 2^32` (`j = 0` is the
    /// single-seed baseline, as in `stepscope eval`).
    pub seeds: u64,
    /// `M`: the steps after which the seeds' latents are averaged (1 ..= the step count).
    pub merge_steps: usize,
    pub sampler: SamplerSettings,
    pub method: EnsembleMethod,
}

/// Per instance, whether each arm solved it, in the plan's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsembleOutcome {
    /// The first seed alone at the sampler's steps.
    pub single: bool,
    /// The first seed alone at as many steps as the ensemble's model passes.
    pub equal_compute: bool,
    pub ensemble: bool,
}

/// The outcomes of the single seed, the single seed at equal compute and the ensemble on the
/// same instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleResult {
    pub outcomes: Vec<EnsembleOutcome>,
    /// Model passes per sample: single seed, ensemble (= the equal-compute seed's steps).
    pub passes: [usize; 2],
}

impl EnsembleResult {
    /// Instances solved by the arm `arm` picks.
    #[must_use]
    pub fn solved(&self, arm: impl Fn(&EnsembleOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|outcome| arm(outcome)).count()
    }
}

/// The exact two-sided sign test on the discordant pairs of two paired arms (the exact form of
/// the usual paired test of two proportions): the probability, with the discordant pairs split
/// 50/50, of a split at least as uneven as `(only_a, only_b)`.
#[must_use]
pub fn mcnemar_exact(only_a: usize, only_b: usize) -> f64 {
    let n = only_a + only_b;
    if n == 0 {
        return 1.0;
    }
    let k = only_a.min(only_b);
    // P(X <= k) for X ~ Binomial(n, 1/2), in logs to stay finite for large n.
    let ln_choose =
        |n: usize, k: usize| -> f64 { (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum() };
    let tail: f64 = (0..=k).map(|i| (ln_choose(n, i) - n as f64 * std::f64::consts::LN_2).exp()).sum();
    (2.0 * tail).min(1.0)
}

/// The Wilson score interval of `hits / total` at about 95% (`z = 1.96`).
#[must_use]
pub fn wilson_interval(hits: usize, total: usize) -> [f64; 2] {
    if total == 0 {
        return [0.0, 1.0];
    }
    let (n, p, z) = (total as f64, hits as f64 / total as f64, 1.96f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

fn session_error(err: SessionError) -> AnalysisError {
    AnalysisError::Task(format!("sampling: {err}"))
}

/// Runs the baseline and the ensemble on every instance; `on_instance` after each.
pub fn run_ensemble(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    plan: &EnsemblePlan,
    on_instance: &mut dyn FnMut(),
) -> Result<EnsembleResult, AnalysisError> {
    if plan.seeds < 2 || plan.seeds > 64 {
        return Err(AnalysisError::Task(format!("an ensemble takes 2 to 64 seeds, not {}", plan.seeds)));
    }
    if plan.merge_steps == 0 || plan.merge_steps > plan.sampler.steps {
        return Err(AnalysisError::Task(format!(
            "--merge-steps {} must be between 1 and the {} sampling steps",
            plan.merge_steps, plan.sampler.steps
        )));
    }
    if plan.instances.iter().any(|&seed| seed >= 1 << 32) {
        return Err(AnalysisError::Task("instance seeds must be below 2^32".to_owned()));
    }
    let settings = plan.sampler.session_settings(CaptureSpec::default());
    let passes = plan.method.passes(plan.seeds as usize, plan.merge_steps, plan.sampler.steps);
    let long_sampler = SamplerSettings { steps: passes, ..plan.sampler };
    let long_settings = long_sampler.session_settings(CaptureSpec::default());
    let task_error = |err: crate::tasks::TaskError| AnalysisError::Task(err.to_string());
    let mut result = EnsembleResult { outcomes: Vec::new(), passes: [plan.sampler.steps, passes] };
    for &seed in &plan.instances {
        let instance = plan.task.generate(seed, &plan.params).map_err(task_error)?;
        let conditioning = task_conditioning(prompt, &instance, model.device()).map_err(task_error)?;
        let session = |noise_idx: u64, settings: &crate::session::SessionSettings| {
            SamplingSession::new(
                Arc::clone(model),
                Arc::clone(&conditioning),
                settings.clone(),
                instance.ground_truth.shape(),
                &NoiseSource::Seed(seed + (noise_idx << 32)),
            )
            .map_err(session_error)
        };
        let video_of = |session: &SamplingSession| -> Result<TaskVideo, AnalysisError> {
            TaskVideo::from_tensor(&session.latents().map_err(session_error)?).map_err(task_error)
        };
        let solved = |session: &SamplingSession| -> Result<bool, AnalysisError> {
            Ok(instance.score(&video_of(session)?).map_err(task_error)?.solved)
        };
        let finish = |mut session: SamplingSession| -> Result<SamplingSession, AnalysisError> {
            while !session.is_finished() {
                session.step().map_err(session_error)?;
            }
            Ok(session)
        };

        let single = solved(&finish(session(0, &settings)?)?)?;
        let equal_compute = solved(&finish(session(0, &long_settings)?)?)?;
        let mut members =
            (0..plan.seeds).map(|idx| session(idx, &settings)).collect::<Result<Vec<_>, _>>()?;
        let ensemble = match plan.method {
            EnsembleMethod::BestOfK => {
                let mut best: Option<(f32, bool)> = None;
                for member in members {
                    let member = finish(member)?;
                    let doubt = palette_distance(&video_of(&member)?);
                    if best.is_none_or(|(least, _)| doubt < least) {
                        best = Some((doubt, solved(&member)?));
                    }
                }
                best.is_some_and(|(_, solved)| solved)
            }
            EnsembleMethod::LatentMean | EnsembleMethod::X0Mean => {
                for _ in 0..plan.merge_steps {
                    members = step_and_pool(&mut members, plan.method)?;
                }
                solved(&finish(members.swap_remove(0))?)?
            }
        };
        result.outcomes.push(EnsembleOutcome { single, equal_compute, ensemble });
        on_instance();
    }
    Ok(result)
}

/// Steps every member once, then pools them by `method` (latent or `x0_hat` mean; see the
/// module docs): the members to go on with.
fn step_and_pool(
    members: &mut [SamplingSession],
    method: EnsembleMethod,
) -> Result<Vec<SamplingSession>, AnalysisError> {
    let tensor_error = |err: candle_core::Error| AnalysisError::Task(err.to_string());
    let mut latents = Vec::with_capacity(members.len());
    let mut x0s = Vec::with_capacity(members.len());
    for member in members.iter_mut() {
        let record = member.step().map_err(session_error)?;
        latents.push(member.latents().map_err(session_error)?);
        x0s.push(record.x0);
    }
    let mean = |tensors: &[Tensor]| -> Result<Tensor, AnalysisError> {
        Tensor::stack(tensors, 0).and_then(|stacked| stacked.mean(0)).map_err(tensor_error)
    };
    let pooled: Vec<Tensor> = if method == EnsembleMethod::X0Mean {
        let sigma = members[0].solver().schedule().sigmas[members[0].step_idx()];
        let mean_x0 = mean(&x0s)?;
        latents
            .iter()
            .zip(&x0s)
            .map(|(x, x0)| {
                (&mean_x0 - x0).and_then(|d| d * (1.0 - sigma)).and_then(|d| x + d).map_err(tensor_error)
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![mean(&latents)?; members.len()]
    };
    members
        .iter()
        .zip(&pooled)
        .map(|(member, latent)| member.fork_with_latents(latent))
        .collect::<Result<_, _>>()
        .map_err(session_error)
}

/// How unsure a final video looks: the mean distance of its pixels to the nearest palette
/// colour (0 for a video drawn in palette colours only).
fn palette_distance(video: &TaskVideo) -> f32 {
    let [_, frames, height, width] = video.shape();
    let mut sum = 0.0f64;
    for frame_idx in 0..frames {
        for y in 0..height {
            for x in 0..width {
                let nearest = crate::tasks::nearest(video.pixel(frame_idx, y, x), &crate::tasks::Color::ALL)
                    .map_or(0.0, |(_, distance)| distance);
                sum += f64::from(nearest);
            }
        }
    }
    (sum / (frames * height * width).max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        // 4 discordant pairs all one way: 2 * (1/2)^4 = 0.125 (the 48 vs 52 of 60).
        assert!((mcnemar_exact(0, 4) - 0.125).abs() < 1e-12);
        assert!((mcnemar_exact(4, 0) - 0.125).abs() < 1e-12);
        // 3 vs 7 of 10: 2 * P(X <= 3) = 2 * 176 / 1024.
        assert!((mcnemar_exact(3, 7) - 352.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_exact(5, 5) - 1.0).abs() < 1e-12);
        assert!((mcnemar_exact(0, 0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_palette_distance_is_zero_on_the_palette_and_grows_off_it() {
        let instance = TaskKind::Maze.generate(3, &TaskParams { size: 4, frames: 3 }).unwrap();
        assert!(palette_distance(&instance.ground_truth) < 1e-6);
        let blurred: Vec<f32> = instance.ground_truth.values().iter().map(|v| 0.5 * v).collect();
        let blurred = TaskVideo::from_values(instance.ground_truth.shape(), blurred).unwrap();
        assert!(palette_distance(&blurred) > 0.1);
    }

    #[test]
    fn wilson_intervals_contain_the_rate_and_shrink_with_more_samples() {
        let [low, high] = wilson_interval(45, 50);
        assert!(low < 0.9 && 0.9 < high, "{low} {high}");
        // Known value: 45/50 gives about [0.786, 0.957].
        assert!((low - 0.786).abs() < 2e-3 && (high - 0.957).abs() < 2e-3, "{low} {high}");
        let [low_many, high_many] = wilson_interval(450, 500);
        assert!(high_many - low_many < high - low);
        assert_eq!(wilson_interval(0, 0).map(f64::to_bits), [0.0f64, 1.0].map(f64::to_bits));
        let [zero_low, zero_high] = wilson_interval(0, 10);
        assert!(zero_low.abs() < 1e-12 && zero_high > 0.2);
    }
}
