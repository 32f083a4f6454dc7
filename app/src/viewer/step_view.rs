//! Which of a step's tensors the views show (`x0_hat`, `x_t`, the velocity or the decoded
//! video): part of the cursor, read by the document and the views, persisted by the settings.

use serde::{Deserialize, Serialize};
use stepscope_engine::trajectory::{StepTensor, TensorName};

/// Which per-step tensor the frame view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum StepView {
    /// The predicted clean video `x0_hat`.
    #[default]
    X0,
    /// The noisy latents `x_t` entering the step.
    Latents,
    /// The predicted velocity `v = eps - x0`.
    Velocity,
    /// `x0_hat` decoded to pixels by the model's VAE, at the steps a file stores it.
    Video,
}

impl StepView {
    pub const ALL: [Self; 4] = [Self::X0, Self::Latents, Self::Velocity, Self::Video];

    /// The name shown in the view picker.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::X0 => "x0_hat",
            Self::Latents => "x_t",
            Self::Velocity => "velocity",
            Self::Video => "decoded video",
        }
    }

    /// The per-step tensor this view reads; `None` for the decoded video, which a file stores
    /// at chosen steps only.
    #[must_use]
    pub fn step_tensor(self) -> Option<StepTensor> {
        match self {
            Self::X0 => Some(StepTensor::X0),
            Self::Latents => Some(StepTensor::Latents),
            Self::Velocity => Some(StepTensor::Velocity),
            Self::Video => None,
        }
    }

    /// The tensor this view shows for `seed_idx` at `step_idx` (the seed that owns the step).
    #[must_use]
    pub fn tensor_name(self, seed_idx: usize, step_idx: usize) -> TensorName {
        match self.step_tensor() {
            Some(kind) => TensorName::Step { seed_idx, step_idx, kind },
            None => TensorName::Video { seed_idx, step_idx },
        }
    }
}
