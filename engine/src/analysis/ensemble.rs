//! The training-free seed ensemble: sample `K` seeds of an instance in lockstep, replace every
//! seed's latents by their mean after each of the first `M` steps, then finish the first seed's
//! trajectory alone. Early steps hold several candidate answers; averaging the seeds' states
//! there pools them before the run commits. Compared with the first seed sampled alone, on the
//! same instances.
use std::sync::Arc;

use candle_core::Tensor;

use super::source::AnalysisError;
use crate::model::WanTransformer;
use crate::session::{CaptureSpec, NoiseSource, SamplingSession, SessionError};
use crate::tasks::{TaskKind, TaskParams, TaskVideo};
use crate::training::{SamplerSettings, task_conditioning};

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
}

/// Solved counts of the baseline and of the ensemble on the same instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsembleResult {
    pub instances: usize,
    pub single_solved: usize,
    pub ensemble_solved: usize,
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
    let mut result = EnsembleResult { instances: 0, single_solved: 0, ensemble_solved: 0 };
    for &seed in &plan.instances {
        let instance =
            plan.task.generate(seed, &plan.params).map_err(|err| AnalysisError::Task(err.to_string()))?;
        let conditioning = task_conditioning(prompt, &instance, model.device())
            .map_err(|err| AnalysisError::Task(err.to_string()))?;
        let session = |noise_idx: u64| {
            SamplingSession::new(
                Arc::clone(model),
                Arc::clone(&conditioning),
                settings.clone(),
                instance.ground_truth.shape(),
                &NoiseSource::Seed(seed + (noise_idx << 32)),
            )
            .map_err(session_error)
        };
        let solved = |session: &SamplingSession| -> Result<bool, AnalysisError> {
            let latents = session.latents().map_err(session_error)?;
            let video =
                TaskVideo::from_tensor(&latents).map_err(|err| AnalysisError::Task(err.to_string()))?;
            Ok(instance.score(&video).map_err(|err| AnalysisError::Task(err.to_string()))?.solved)
        };

        let mut single = session(0)?;
        while !single.is_finished() {
            single.step().map_err(session_error)?;
        }
        result.single_solved += usize::from(solved(&single)?);

        let mut members = (0..plan.seeds).map(session).collect::<Result<Vec<_>, _>>()?;
        for _ in 0..plan.merge_steps {
            let mut sum: Option<Tensor> = None;
            for member in &mut members {
                member.step().map_err(session_error)?;
                let latents = member.latents().map_err(session_error)?;
                sum = Some(match sum {
                    None => latents,
                    Some(sum) => (sum + latents).map_err(|err| AnalysisError::Task(err.to_string()))?,
                });
            }
            let mean = sum
                .map(|sum| sum / plan.seeds as f64)
                .transpose()
                .map_err(|err| AnalysisError::Task(err.to_string()))?
                .ok_or_else(|| AnalysisError::Task("no seeds".to_owned()))?;
            members = members
                .iter()
                .map(|member| member.fork_with_latents(&mean))
                .collect::<Result<_, _>>()
                .map_err(session_error)?;
        }
        let mut merged = members.swap_remove(0);
        while !merged.is_finished() {
            merged.step().map_err(session_error)?;
        }
        result.ensemble_solved += usize::from(solved(&merged)?);
        result.instances += 1;
        on_instance();
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

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
