//! Linear probes over the steps and layers: does block `l`'s output at denoising step `k`
//! already say which cells belong to the answer (for the maze: which cells are on the path)?
//!
//! For each held-out instance the model samples the task as the app does, capturing every
//! block's output tokens at every step. The tokens of one video frame are the probe's inputs
//! (`D` features each) and the task's per-token targets ([`TaskInstance::token_targets`], zero
//! or one) its outputs. Per (step, layer) a ridge regression with an unpenalised intercept is
//! fitted in closed form on the training instances, from the sufficient statistics `X^T X` and
//! `X^T y` accumulated instance by instance (so nothing grows with the instance count), then
//! solved by Cholesky; a token is predicted "on the answer" where the fit exceeds 0.5. Accuracy
//! is measured on separate test instances.
use std::sync::Arc;

use candle_core::{IndexOp, Tensor};

use super::source::AnalysisError;
use crate::model::WanTransformer;
use crate::session::{CaptureSpec, NoiseSource, SamplingSession};
use crate::tasks::{TaskInstance, TaskKind, TaskParams};
use crate::training::{SamplerSettings, task_conditioning};
use crate::trajectory::CaptureKind;

/// What to probe, on which instances.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    pub task: TaskKind,
    pub params: TaskParams,
    /// Instances the probes are fitted on.
    pub train_seeds: Vec<u64>,
    /// Instances the accuracy is measured on (disjoint from the training ones).
    pub test_seeds: Vec<u64>,
    pub sampler: SamplerSettings,
    /// The video frame whose tokens are probed (`params.frames - 1`: the answer frame).
    pub frame: usize,
    /// Ridge strength, relative to the mean feature variance (`1e-3` is mild).
    pub ridge: f64,
}

/// Probe accuracy per (step, layer), row-major `[steps, layers]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub steps: usize,
    pub layers: usize,
    /// Fraction of test tokens classified right.
    pub accuracy: Vec<f64>,
    /// Mean of the true-positive and true-negative rates (0.5 is chance for any class balance).
    pub balanced_accuracy: Vec<f64>,
    /// Accuracy of always answering the majority class on the test tokens.
    pub chance: f64,
    pub train_tokens: usize,
    pub test_tokens: usize,
}

impl ProbeResult {
    /// Accuracy at `step_idx`, `layer_idx`.
    #[must_use]
    pub fn accuracy_at(&self, step_idx: usize, layer_idx: usize) -> f64 {
        self.accuracy[step_idx * self.layers + layer_idx]
    }
}

/// `X^T X` and `X^T y` of one (step, layer) probe, features augmented with a trailing 1.
#[derive(Debug, Clone)]
struct NormalEquations {
    width: usize,
    gram: Vec<f64>,
    moment: Vec<f64>,
}

impl NormalEquations {
    fn new(features: usize) -> Self {
        let width = features + 1;
        Self { width, gram: vec![0.0; width * width], moment: vec![0.0; width] }
    }

    fn add(&mut self, tokens: &[f32], targets: &[f32]) {
        let features = self.width - 1;
        let mut row = vec![1.0f64; self.width];
        for (token, &target) in tokens.chunks_exact(features).zip(targets) {
            for (slot, &value) in row.iter_mut().zip(token) {
                *slot = f64::from(value);
            }
            for (i, &a) in row.iter().enumerate() {
                self.moment[i] += a * f64::from(target);
                let gram_row = &mut self.gram[i * self.width..(i + 1) * self.width];
                for (cell, &b) in gram_row.iter_mut().zip(&row).take(i + 1) {
                    *cell += a * b;
                }
            }
        }
    }

    /// The ridge solution (intercept last, not penalised).
    fn solve(&self, ridge: f64) -> Result<Vec<f64>, AnalysisError> {
        let n = self.width;
        let mut a = self.gram.clone();
        // Mirror the lower triangle.
        for i in 0..n {
            for j in 0..i {
                a[j * n + i] = a[i * n + j];
            }
        }
        let features = n - 1;
        let count = a[n * n - 1].max(1.0);
        let mean_variance = (0..features).map(|i| a[i * n + i] / count).sum::<f64>() / features.max(1) as f64;
        let penalty = ridge * count * mean_variance.max(f64::MIN_POSITIVE);
        for i in 0..features {
            a[i * n + i] += penalty;
        }
        cholesky_solve(&mut a, &self.moment, n)
            .ok_or_else(|| AnalysisError::Task("the probe's normal equations are singular".to_owned()))
    }
}

/// Solves `A x = b` for symmetric positive definite `A` (`n x n`, overwritten by its factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let diagonal = a[j * n + j] - (0..j).map(|k| a[j * n + k] * a[j * n + k]).sum::<f64>();
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let pivot = diagonal.sqrt();
        a[j * n + j] = pivot;
        for i in j + 1..n {
            let dot: f64 = (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum();
            a[i * n + j] = (a[i * n + j] - dot) / pivot;
        }
    }
    let mut y = b.to_vec();
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| a[i * n + k] * y[k]).sum();
        y[i] = (y[i] - dot) / a[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| a[k * n + i] * y[k]).sum();
        y[i] = (y[i] - dot) / a[i * n + i];
    }
    Some(y)
}

/// Counts of one (step, layer) probe on the test tokens.
#[derive(Debug, Clone, Copy, Default)]
struct Confusion {
    true_positive: usize,
    positive: usize,
    true_negative: usize,
    negative: usize,
}

/// Per step, per layer, the probed frame's tokens `[T, D]` (row-major) of one sampled instance.
type InstanceTokens = Vec<Vec<Vec<f32>>>;

/// Samples `instance` and returns its tokens at every step and layer.
fn sample_tokens(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    instance: &TaskInstance,
    plan: &ProbePlan,
) -> Result<InstanceTokens, AnalysisError> {
    let session_error = |err: crate::session::SessionError| AnalysisError::Task(format!("sampling: {err}"));
    let capture: CaptureSpec = "hidden@all".parse().map_err(session_error)?;
    let settings = plan.sampler.session_settings(capture);
    let conditioning = task_conditioning(prompt, instance, model.device())
        .map_err(|err| AnalysisError::Task(err.to_string()))?;
    let mut session = SamplingSession::new(
        Arc::clone(model),
        conditioning,
        settings,
        instance.ground_truth.shape(),
        &NoiseSource::Seed(instance.seed),
    )
    .map_err(session_error)?;
    let mut per_step = Vec::with_capacity(plan.sampler.steps);
    while !session.is_finished() {
        let record = session.step().map_err(session_error)?;
        let mut per_layer = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            let (_, hidden) =
                layer.tensors.iter().find(|(kind, _)| *kind == CaptureKind::Hidden).ok_or_else(|| {
                    AnalysisError::Task(format!("layer {} gave no hidden states", layer.layer_idx))
                })?;
            let tensor_error =
                |err: candle_core::Error| AnalysisError::Task(format!("layer {}: {err}", layer.layer_idx));
            // [D, F', H', W'] -> the probed frame's tokens as rows [H' W', D].
            let frame = hidden.i((.., plan.frame)).map_err(tensor_error)?;
            let width = frame.dim(0).map_err(tensor_error)?;
            let tokens = frame
                .reshape((width, ()))
                .and_then(|t| t.t())
                .and_then(|t| t.contiguous())
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(tensor_error)?;
            per_layer.push(tokens);
        }
        per_step.push(per_layer);
    }
    Ok(per_step)
}

/// Fits and tests a probe per (step, layer); `on_instance` is called after each sampled
/// instance (training and test), for a progress bar.
pub fn fit_probes(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    plan: &ProbePlan,
    on_instance: &mut dyn FnMut(),
) -> Result<ProbeResult, AnalysisError> {
    let overlap = plan.train_seeds.iter().any(|seed| plan.test_seeds.contains(seed));
    if plan.train_seeds.is_empty() || plan.test_seeds.is_empty() || overlap {
        return Err(AnalysisError::Task(format!(
            "probes need disjoint, non-empty training and test instances (got {:?} and {:?})",
            plan.train_seeds, plan.test_seeds
        )));
    }
    if plan.frame >= plan.params.frames {
        return Err(AnalysisError::Task(format!(
            "frame {} is outside the task's {} frames",
            plan.frame, plan.params.frames
        )));
    }
    if !(plan.ridge.is_finite() && plan.ridge > 0.0) {
        return Err(AnalysisError::Task(format!("the ridge strength {} must be positive", plan.ridge)));
    }
    let (steps, layers, width) = (plan.sampler.steps, model.num_layers(), model.config().inner_dim());
    let generate =
        |seed| plan.task.generate(seed, &plan.params).map_err(|err| AnalysisError::Task(err.to_string()));

    let mut equations = vec![NormalEquations::new(width); steps * layers];
    let mut train_tokens = 0;
    for &seed in &plan.train_seeds {
        let instance = generate(seed)?;
        let targets = instance.token_targets();
        for (step_idx, per_layer) in sample_tokens(model, prompt, &instance, plan)?.iter().enumerate() {
            for (layer_idx, tokens) in per_layer.iter().enumerate() {
                equations[step_idx * layers + layer_idx].add(tokens, &targets);
            }
        }
        train_tokens += targets.len();
        on_instance();
    }
    let weights = equations.iter().map(|eq| eq.solve(plan.ridge)).collect::<Result<Vec<_>, _>>()?;

    let mut confusion = vec![Confusion::default(); steps * layers];
    let mut test_tokens = 0;
    for &seed in &plan.test_seeds {
        let instance = generate(seed)?;
        let targets = instance.token_targets();
        for (step_idx, per_layer) in sample_tokens(model, prompt, &instance, plan)?.iter().enumerate() {
            for (layer_idx, tokens) in per_layer.iter().enumerate() {
                let cell = step_idx * layers + layer_idx;
                let (w, counts) = (&weights[cell], &mut confusion[cell]);
                for (token, &target) in tokens.chunks_exact(width).zip(&targets) {
                    let fit = w[width] + token.iter().zip(w).map(|(&x, &wi)| f64::from(x) * wi).sum::<f64>();
                    let (predicted, actual) = (fit > 0.5, target > 0.5);
                    if actual {
                        counts.positive += 1;
                        counts.true_positive += usize::from(predicted);
                    } else {
                        counts.negative += 1;
                        counts.true_negative += usize::from(!predicted);
                    }
                }
            }
        }
        test_tokens += targets.len();
        on_instance();
    }
    let rate = |hits: usize, total: usize| if total == 0 { 1.0 } else { hits as f64 / total as f64 };
    let accuracy =
        confusion.iter().map(|c| rate(c.true_positive + c.true_negative, c.positive + c.negative)).collect();
    let balanced_accuracy = confusion
        .iter()
        .map(|c| 0.5 * (rate(c.true_positive, c.positive) + rate(c.true_negative, c.negative)))
        .collect();
    let first = confusion.first().copied().unwrap_or_default();
    let chance = rate(first.positive.max(first.negative), first.positive + first.negative);
    Ok(ProbeResult { steps, layers, accuracy, balanced_accuracy, chance, train_tokens, test_tokens })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_rule() {
        // y = 0.25 + 0.5 x0 - 0.125 x1 exactly, over a grid of points: a tiny ridge changes
        // nothing visible.
        let mut equations = NormalEquations::new(2);
        for i in 0..10 {
            for j in 0..10 {
                let (x0, x1) = (i as f32 / 9.0, j as f32 / 9.0);
                equations.add(&[x0, x1], &[0.25 + 0.5 * x0 - 0.125 * x1]);
            }
        }
        let w = equations.solve(1e-9).unwrap();
        for (got, want) in w.iter().zip([0.5, -0.125, 0.25]) {
            assert!((got - want).abs() < 1e-5, "{w:?}");
        }
    }

    #[test]
    fn constant_features_are_singular_without_a_ridge_and_fine_with_one() {
        let mut equations = NormalEquations::new(1);
        equations.add(&[1.0, 1.0, 1.0], &[1.0, 0.0, 1.0]);
        // The feature equals the intercept column: the ridge keeps the system solvable.
        let w = equations.solve(1e-3).unwrap();
        let fit = w[0] + w[1];
        assert!((fit - 2.0 / 3.0).abs() < 1e-2, "{w:?}");
    }
}
