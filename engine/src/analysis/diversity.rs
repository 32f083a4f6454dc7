//! How varied the predictions are, over the steps: across seeds (the mean RMS distance between
//! the distinct predictions of every pair of seeds) and across steps (each seed's RMS change
//! since the step before). Together they show whether a model keeps several candidates early
//! and converges late.
use std::rc::Rc;

use super::seed_distance::rms_distance;
use super::source::{AnalysisError, TensorSource, values_of};
use crate::trajectory::{StepTensor, TensorName};

/// Diversity of one per-step tensor (usually `x0_hat`) over a run's seeds and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Diversity {
    pub tensor: StepTensor,
    /// Per step, the mean RMS distance over pairs of distinct predictions (seeds that share
    /// the step through a fork count once); `None` with fewer than two.
    pub between_seeds: Vec<Option<f64>>,
    /// Per step, how many distinct predictions `between_seeds` compared.
    pub predictions: Vec<usize>,
    /// `step_change[seed_idx][step_idx]`: the RMS change since step `step_idx - 1`; `None` at
    /// step 0 and where either step is missing.
    pub step_change: Vec<Vec<Option<f64>>>,
}

/// [`Diversity`] of `tensor` over every seed and step of `source`.
pub fn diversity(source: &dyn TensorSource, tensor: StepTensor) -> Result<Diversity, AnalysisError> {
    let manifest = source.manifest();
    let steps = manifest.schedule.steps;
    let num_seeds = manifest.seeds.len();
    let mut between_seeds = vec![None; steps];
    let mut predictions = vec![0; steps];
    let mut step_change = vec![vec![None; steps]; num_seeds];
    // The previous step's values of each seed's owner, to measure the change.
    let mut previous: Vec<Option<(usize, Rc<Vec<f32>>)>> = vec![None; num_seeds];
    for step_idx in 0..steps {
        // One load per distinct owner of this step.
        let mut owners: Vec<(usize, Rc<Vec<f32>>)> = Vec::new();
        for (seed_idx, change) in step_change.iter_mut().enumerate() {
            let Some(owner) = manifest.step_owner(seed_idx, step_idx) else {
                previous[seed_idx] = None;
                continue;
            };
            let values = if let Some((_, values)) = owners.iter().find(|(o, _)| *o == owner) {
                Rc::clone(values)
            } else {
                let name = TensorName::Step { seed_idx: owner, step_idx, kind: tensor };
                let values = Rc::new(values_of(source, &name, 4, "[C, F, H, W]")?.1);
                owners.push((owner, Rc::clone(&values)));
                values
            };
            if let Some((_, before)) = &previous[seed_idx] {
                change[step_idx] = Some(rms_distance(before, &values));
            }
            previous[seed_idx] = Some((owner, values));
        }
        predictions[step_idx] = owners.len();
        let mut sum = 0.0;
        let mut pairs = 0_usize;
        for (i, (_, a)) in owners.iter().enumerate() {
            for (_, b) in &owners[i + 1..] {
                sum += rms_distance(a, b);
                pairs += 1;
            }
        }
        between_seeds[step_idx] = (pairs > 0).then(|| sum / pairs as f64);
    }
    Ok(Diversity { tensor, between_seeds, predictions, step_change })
}
