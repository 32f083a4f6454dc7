//! Maps over (step, frame): one number per denoising step and video frame, for the heatmaps
//! the paper's scripts drew offline.
use super::seed_distance::rms_distance;
use super::source::{AnalysisError, TensorSource, values_of};
use crate::trajectory::{CaptureKind, StepTensor, TensorName};

/// What each cell of a [`StepFrameMap`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepFrameStat {
    /// RMS change of `tensor` in each latent frame since the step before (step 0: none).
    Change { tensor: StepTensor },
    /// Mean token norm of block `layer_idx`'s output in each token frame.
    TokenNorm { layer_idx: usize },
}

/// One value per (step, frame), row-major `[steps, frames]`; NaN where the seed lacks the step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFrameMap {
    pub stat: StepFrameStat,
    pub steps: usize,
    pub frames: usize,
    pub values: Vec<f32>,
}

impl StepFrameMap {
    /// The value at (`step_idx`, `frame_idx`), `None` if missing or out of range.
    #[must_use]
    pub fn value(&self, step_idx: usize, frame_idx: usize) -> Option<f32> {
        if step_idx >= self.steps || frame_idx >= self.frames {
            return None;
        }
        self.values.get(step_idx * self.frames + frame_idx).copied().filter(|v| v.is_finite())
    }

    /// The smallest and largest finite value, `None` if there is none.
    #[must_use]
    pub fn range(&self) -> Option<[f32; 2]> {
        self.values.iter().filter(|v| v.is_finite()).fold(None, |range, &v| match range {
            None => Some([v, v]),
            Some([lo, hi]) => Some([lo.min(v), hi.max(v)]),
        })
    }
}

/// `stat` for every step and frame of seed `seed_idx`.
pub fn step_frame_map(
    source: &dyn TensorSource,
    seed_idx: usize,
    stat: StepFrameStat,
) -> Result<StepFrameMap, AnalysisError> {
    let manifest = source.manifest();
    let steps = manifest.schedule.steps;
    let frames = match stat {
        StepFrameStat::Change { .. } => manifest.latent_shape[1],
        StepFrameStat::TokenNorm { .. } => manifest.token_grid()[0],
    };
    let mut values = vec![f32::NAN; steps * frames];
    let mut previous: Option<(usize, Vec<f32>)> = None;
    for step_idx in 0..steps {
        let row = &mut values[step_idx * frames..(step_idx + 1) * frames];
        match stat {
            StepFrameStat::Change { tensor } => {
                let Some(owner) = manifest.step_owner(seed_idx, step_idx) else {
                    previous = None;
                    continue;
                };
                let name = TensorName::Step { seed_idx: owner, step_idx, kind: tensor };
                let (dims, current) = values_of(source, &name, 4, "[C, F, H, W]")?;
                if let Some((_, before)) = previous.as_ref().filter(|(step, _)| step + 1 == step_idx) {
                    for (frame_idx, cell) in row.iter_mut().enumerate() {
                        *cell = frame_change(before, &current, &dims, frame_idx);
                    }
                }
                previous = Some((step_idx, current));
            }
            StepFrameStat::TokenNorm { layer_idx } => {
                let Some(owner) = manifest.capture_owner(seed_idx, step_idx) else { continue };
                let name = TensorName::capture(owner, step_idx, layer_idx, CaptureKind::TokenNorm);
                let (dims, norms) = values_of(source, &name, 3, "[F', H', W']")?;
                let plane = dims[1] * dims[2];
                for (frame_idx, cell) in row.iter_mut().enumerate().take(dims[0]) {
                    let frame = &norms[frame_idx * plane..(frame_idx + 1) * plane];
                    *cell = frame.iter().sum::<f32>() / plane.max(1) as f32;
                }
            }
        }
    }
    Ok(StepFrameMap { stat, steps, frames, values })
}

/// RMS difference over all channels of frame `frame_idx` between two `[C, F, H, W]` tensors
/// with `dims`, flattened; NaN for a frame outside the tensor.
fn frame_change(before: &[f32], current: &[f32], dims: &[usize], frame_idx: usize) -> f32 {
    let [channels, frames, height, width] = [dims[0], dims[1], dims[2], dims[3]];
    if frame_idx >= frames {
        return f32::NAN;
    }
    let plane = height * width;
    let mut sum = 0.0f64;
    for channel_idx in 0..channels {
        let start = (channel_idx * frames + frame_idx) * plane;
        let (Some(a), Some(b)) = (before.get(start..start + plane), current.get(start..start + plane)) else {
            return f32::NAN;
        };
        sum += rms_distance(a, b).powi(2) * plane as f64;
    }
    (sum / (channels * plane).max(1) as f64).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_change_is_the_rms_over_channels_of_one_frame() {
        // [C=2, F=2, H=1, W=1]: frame 0 changes by (3, 4), frame 1 not at all.
        let before = [0.0, 1.0, 0.0, 1.0];
        let current = [3.0, 1.0, 4.0, 1.0];
        let dims = [2, 2, 1, 1];
        assert!((frame_change(&before, &current, &dims, 0) - 12.5f32.sqrt()).abs() < 1e-6);
        assert!(frame_change(&before, &current, &dims, 1).abs() < 1e-6);
        assert!(frame_change(&before, &current, &dims, 2).is_nan());
    }

    #[test]
    fn the_range_skips_missing_cells() {
        let map = StepFrameMap {
            stat: StepFrameStat::TokenNorm { layer_idx: 0 },
            steps: 2,
            frames: 2,
            values: vec![f32::NAN, 2.0, -1.0, 5.0],
        };
        assert_eq!(map.range(), Some([-1.0, 5.0]));
        assert_eq!(map.value(0, 0), None);
        assert_eq!(map.value(1, 1), Some(5.0));
        assert_eq!(map.value(2, 0), None);
    }
}
