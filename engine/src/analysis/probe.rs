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
//!
//! Two baselines are fitted and tested the same way on the same tokens, so that a probe's
//! accuracy means something beyond them:
//! - **layout** (one figure): features of the puzzle alone, the token's 2x2 patch of the first
//!   frame (12 values) and its row and column one-hot; what the grid's layout (padding, start,
//!   flag, walls) says about the answer with no model at all;
//! - **`x0_hat` readout** (per step): the layout features plus the token's 2x2 patch of the
//!   step's own prediction `x0_hat` in the probed frame; what the model's output already shows
//!   at that step, read linearly.
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
    /// Balanced accuracy of the layout baseline (see the module docs); `None` in results
    /// written before the baselines existed.
    pub layout_balanced_accuracy: Option<f64>,
    /// Per step, balanced accuracy of the `x0_hat` readout baseline (empty where not measured).
    pub x0_balanced_accuracy: Vec<f64>,
}

impl ProbeResult {
    /// Per (step, layer), row-major, balanced accuracy minus the stronger baseline at the step
    /// (`None` without baselines).
    #[must_use]
    pub fn over_baseline(&self) -> Option<Vec<f64>> {
        let baselines: Vec<f64> =
            (0..self.steps).map(|step| self.baseline_at(step)).collect::<Option<_>>()?;
        Some(
            self.balanced_accuracy
                .iter()
                .enumerate()
                .map(|(cell, &value)| value - baselines[cell / self.layers.max(1)])
                .collect(),
        )
    }

    /// The stronger baseline's balanced accuracy at `step_idx`: the layout's or the step's
    /// `x0_hat` readout, whichever is higher (`None` when neither was measured).
    #[must_use]
    pub fn baseline_at(&self, step_idx: usize) -> Option<f64> {
        let readout = self.x0_balanced_accuracy.get(step_idx).copied();
        match (self.layout_balanced_accuracy, readout) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

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

impl Confusion {
    /// Counts `fit` (thresholded at 0.5) against `target`.
    fn add(&mut self, fit: f64, target: f32) {
        let (predicted, actual) = (fit > 0.5, target > 0.5);
        if actual {
            self.positive += 1;
            self.true_positive += usize::from(predicted);
        } else {
            self.negative += 1;
            self.true_negative += usize::from(!predicted);
        }
    }

    fn balanced_accuracy(&self) -> f64 {
        0.5 * (rate(self.true_positive, self.positive) + rate(self.true_negative, self.negative))
    }
}

fn rate(hits: usize, total: usize) -> f64 {
    if total == 0 { 1.0 } else { hits as f64 / total as f64 }
}

/// The fit of weights `w` (intercept last) to features `x`.
fn fit_of(w: &[f64], x: &[f32]) -> f64 {
    w[x.len()] + x.iter().zip(w).map(|(&v, &wi)| f64::from(v) * wi).sum::<f64>()
}

/// The baselines' features per token of the probed frame: `[T, 12 + rows + cols]` layout
/// features (row-major) and, per step, `[T, 24 + rows + cols]` readout features.
struct BaselineFeatures {
    layout: Vec<f32>,
    readout: Vec<Vec<f32>>,
}

/// Pixel values of each token's 2x2 patch (`[3, 2, 2]` flattened) in frame `frame_idx` of a
/// `[3, F, H, W]` video, token-major: `[H/2 W/2, 12]`.
fn patches(values: &[f32], [_, frames, height, width]: [usize; 4], frame_idx: usize) -> Vec<[f32; 12]> {
    let (rows, cols) = (height / 2, width / 2);
    let mut out = vec![[0.0; 12]; rows * cols];
    for (token, patch) in out.iter_mut().enumerate() {
        let (row, col) = (token / cols, token % cols);
        for ch in 0..3 {
            for (k, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                patch[ch * 4 + k] =
                    values[((ch * frames + frame_idx) * height + 2 * row + dy) * width + 2 * col + dx];
            }
        }
    }
    out
}

/// Layout features: the puzzle patch and the one-hot row and column, `[T, 12 + rows + cols]`.
fn layout_features(instance: &TaskInstance) -> Vec<f32> {
    let (rows, cols) = instance.token_grid();
    let puzzle = patches(instance.first_frame.values(), instance.first_frame.shape(), 0);
    let mut features = Vec::with_capacity(puzzle.len() * (12 + rows + cols));
    for (token, patch) in puzzle.iter().enumerate() {
        features.extend_from_slice(patch);
        features.extend((0..rows).map(|row| f32::from(u8::from(row == token / cols))));
        features.extend((0..cols).map(|col| f32::from(u8::from(col == token % cols))));
    }
    features
}

/// Readout features of one step: the layout features of each token followed by its patch of
/// `x0` `[3, F, H, W]` in the probed frame.
fn readout_features(layout: &[f32], x0: &[f32], shape: [usize; 4], frame_idx: usize) -> Vec<f32> {
    let predicted = patches(x0, shape, frame_idx);
    let layout_width = layout.len() / predicted.len().max(1);
    let mut features = Vec::with_capacity(layout.len() + predicted.len() * 12);
    for (token_layout, patch) in layout.chunks_exact(layout_width).zip(&predicted) {
        features.extend_from_slice(token_layout);
        features.extend_from_slice(patch);
    }
    features
}

/// Per step, per layer, the probed frame's tokens `[T, D]` (row-major) of one sampled instance.
type InstanceTokens = Vec<Vec<Vec<f32>>>;

/// Samples `instance` and returns its tokens at every step and layer, and the baselines'
/// features.
fn sample_tokens(
    model: &Arc<WanTransformer>,
    prompt: &Tensor,
    instance: &TaskInstance,
    plan: &ProbePlan,
) -> Result<(InstanceTokens, BaselineFeatures), AnalysisError> {
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
    let layout = layout_features(instance);
    let mut readout = Vec::with_capacity(plan.sampler.steps);
    while !session.is_finished() {
        let record = session.step().map_err(session_error)?;
        let x0 = record
            .x0
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|err| AnalysisError::Task(format!("x0_hat: {err}")))?;
        readout.push(readout_features(&layout, &x0, instance.ground_truth.shape(), plan.frame));
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
    Ok((per_step, BaselineFeatures { layout, readout }))
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

    let (rows, cols) = generate(plan.train_seeds[0])?.token_grid();
    let layout_width = 12 + rows + cols;
    let mut equations = vec![NormalEquations::new(width); steps * layers];
    let mut layout_equations = NormalEquations::new(layout_width);
    let mut readout_equations = vec![NormalEquations::new(layout_width + 12); steps];
    let mut train_tokens = 0;
    for &seed in &plan.train_seeds {
        let instance = generate(seed)?;
        let targets = instance.token_targets();
        let (tokens, baselines) = sample_tokens(model, prompt, &instance, plan)?;
        for (step_idx, per_layer) in tokens.iter().enumerate() {
            for (layer_idx, tokens) in per_layer.iter().enumerate() {
                equations[step_idx * layers + layer_idx].add(tokens, &targets);
            }
        }
        layout_equations.add(&baselines.layout, &targets);
        for (equation, features) in readout_equations.iter_mut().zip(&baselines.readout) {
            equation.add(features, &targets);
        }
        train_tokens += targets.len();
        on_instance();
    }
    let weights = equations.iter().map(|eq| eq.solve(plan.ridge)).collect::<Result<Vec<_>, _>>()?;
    let layout_weights = layout_equations.solve(plan.ridge)?;
    let readout_weights =
        readout_equations.iter().map(|eq| eq.solve(plan.ridge)).collect::<Result<Vec<_>, _>>()?;

    let mut confusion = vec![Confusion::default(); steps * layers];
    let mut layout_confusion = Confusion::default();
    let mut readout_confusion = vec![Confusion::default(); steps];
    let mut test_tokens = 0;
    for &seed in &plan.test_seeds {
        let instance = generate(seed)?;
        let targets = instance.token_targets();
        let (tokens, baselines) = sample_tokens(model, prompt, &instance, plan)?;
        for (step_idx, per_layer) in tokens.iter().enumerate() {
            for (layer_idx, tokens) in per_layer.iter().enumerate() {
                let cell = step_idx * layers + layer_idx;
                for (token, &target) in tokens.chunks_exact(width).zip(&targets) {
                    confusion[cell].add(fit_of(&weights[cell], token), target);
                }
            }
        }
        for (token, &target) in baselines.layout.chunks_exact(layout_width).zip(&targets) {
            layout_confusion.add(fit_of(&layout_weights, token), target);
        }
        for ((counts, w), features) in
            readout_confusion.iter_mut().zip(&readout_weights).zip(&baselines.readout)
        {
            for (token, &target) in features.chunks_exact(layout_width + 12).zip(&targets) {
                counts.add(fit_of(w, token), target);
            }
        }
        test_tokens += targets.len();
        on_instance();
    }
    let accuracy =
        confusion.iter().map(|c| rate(c.true_positive + c.true_negative, c.positive + c.negative)).collect();
    let balanced_accuracy = confusion.iter().map(Confusion::balanced_accuracy).collect();
    let first = confusion.first().copied().unwrap_or_default();
    let chance = rate(first.positive.max(first.negative), first.positive + first.negative);
    Ok(ProbeResult {
        steps,
        layers,
        accuracy,
        balanced_accuracy,
        chance,
        train_tokens,
        test_tokens,
        layout_balanced_accuracy: Some(layout_confusion.balanced_accuracy()),
        x0_balanced_accuracy: readout_confusion.iter().map(Confusion::balanced_accuracy).collect(),
    })
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

    #[test]
    #[expect(clippy::float_cmp, reason = "values copied, not computed")]
    fn baseline_features_are_the_token_patches_and_the_position() {
        // A 3-frame 4x6-pixel video whose value encodes (channel, frame, y, x).
        let shape = [3, 3, 4, 6];
        let values: Vec<f32> = (0..3 * 3 * 4 * 6).map(|idx| idx as f32).collect();
        let frame = patches(&values, shape, 2);
        assert_eq!(frame.len(), 2 * 3);
        // Token (1, 2): pixels (2..4, 4..6) of frame 2, channel-major.
        let at = |ch: usize, y: usize, x: usize| (((ch * 3 + 2) * 4 + y) * 6 + x) as f32;
        assert_eq!(frame[5][..4], [at(0, 2, 4), at(0, 2, 5), at(0, 3, 4), at(0, 3, 5)]);
        assert_eq!(frame[5][8], at(2, 2, 4));

        let instance = crate::tasks::TaskKind::Maze.generate(3, &TaskParams { size: 3, frames: 2 }).unwrap();
        let layout = layout_features(&instance);
        let (rows, cols) = instance.token_grid();
        let width = 12 + rows + cols;
        assert_eq!(layout.len(), rows * cols * width);
        // Token (1, 2): its one-hot row and column.
        let token = &layout[(cols + 2) * width..(cols + 3) * width];
        assert_eq!(token[12..12 + rows].iter().sum::<f32>(), 1.0);
        assert_eq!((token[12 + 1], token[12 + rows + 2]), (1.0, 1.0));
        let readout =
            readout_features(&layout, instance.ground_truth.values(), instance.ground_truth.shape(), 1);
        assert_eq!(readout.len(), rows * cols * (width + 12));
        assert_eq!(readout[..width], layout[..width]);
    }
}
