//! How far apart seeds are at each step: the root-mean-square difference of a per-step tensor
//! (usually `x0_hat`) between every seed and a reference seed.
use super::source::{AnalysisError, TensorSource, values_of};
use crate::trajectory::{StepTensor, TensorName};

/// Per seed and step, the RMS distance to the reference seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedDistances {
    pub reference_seed: usize,
    pub tensor: StepTensor,
    /// `per_seed[seed_idx][step_idx]`: `None` where either seed lacks the step. The reference's
    /// own row, and steps a fork shares with its parent, are 0.
    pub per_seed: Vec<Vec<Option<f64>>>,
}

/// `sqrt(mean((a - b)^2))` over every value of `tensor` between each seed and
/// `reference_seed`, at every step.
pub fn seed_distances(
    source: &dyn TensorSource,
    reference_seed: usize,
    tensor: StepTensor,
) -> Result<SeedDistances, AnalysisError> {
    let manifest = source.manifest();
    let steps = manifest.schedule.steps;
    let num_seeds = manifest.seeds.len();
    let mut per_seed = vec![vec![None; steps]; num_seeds];
    for step_idx in 0..steps {
        let Some(reference_owner) = manifest.step_owner(reference_seed, step_idx) else { continue };
        let mut reference: Option<Vec<f32>> = None;
        for (seed_idx, row) in per_seed.iter_mut().enumerate() {
            let Some(owner) = manifest.step_owner(seed_idx, step_idx) else { continue };
            if owner == reference_owner {
                row[step_idx] = Some(0.0);
                continue;
            }
            if reference.is_none() {
                let name = TensorName::Step { seed_idx: reference_owner, step_idx, kind: tensor };
                reference = Some(values_of(source, &name, 4, "[C, F, H, W]")?.1);
            }
            let name = TensorName::Step { seed_idx: owner, step_idx, kind: tensor };
            let (_, values) = values_of(source, &name, 4, "[C, F, H, W]")?;
            row[step_idx] = reference.as_deref().map(|reference| rms_distance(reference, &values));
        }
    }
    Ok(SeedDistances { reference_seed, tensor, per_seed })
}

/// Root-mean-square difference of two equally long slices (0 for empty ones).
pub(crate) fn rms_distance(a: &[f32], b: &[f32]) -> f64 {
    let len = a.len().min(b.len());
    if len == 0 {
        return 0.0;
    }
    let sum: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x - y).powi(2)).sum();
    (sum / len as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_distance_is_the_root_of_the_mean_square() {
        assert!((rms_distance(&[0.0, 0.0], &[3.0, 4.0]) - 12.5f64.sqrt()).abs() < 1e-12);
        assert!(rms_distance(&[], &[]).abs() < f64::EPSILON);
    }
}
