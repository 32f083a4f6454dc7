//! Errors of the scheduler module.

use candle_core::{DType, Shape};

use super::MAX_STEPS;

/// What can go wrong when building a schedule or stepping a solver.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The number of denoising steps is 0 or above [`MAX_STEPS`].
    #[error("a schedule needs between 1 and {MAX_STEPS} steps, got {steps}")]
    InvalidSteps {
        /// The rejected number of steps.
        steps: usize,
    },

    /// The timestep shift is NaN, infinite, zero or negative.
    #[error("the schedule shift must be finite and positive, got {shift}")]
    InvalidShift {
        /// The rejected shift.
        shift: f64,
    },

    /// `step` was called with another index than the next one of the schedule.
    #[error("the solver expects step {expected} next, got step {step_idx}")]
    StepOutOfOrder {
        /// The index the solver was at.
        expected: usize,
        /// The index it was given.
        step_idx: usize,
    },

    /// `step` was called after the last step of the schedule.
    #[error("step {step_idx} is past the end of a {steps}-step schedule")]
    StepOutOfRange {
        /// The index given.
        step_idx: usize,
        /// The length of the schedule.
        steps: usize,
    },

    /// The velocity and the sample have different shapes.
    #[error("the velocity has shape {velocity:?} but the sample has shape {sample:?}")]
    ShapeMismatch {
        /// Shape of the model output.
        velocity: Shape,
        /// Shape of the sample being denoised.
        sample: Shape,
    },

    /// The velocity and the sample have different element types.
    #[error("the velocity is {velocity:?} but the sample is {sample:?}")]
    DTypeMismatch {
        /// Element type of the model output.
        velocity: DType,
        /// Element type of the sample being denoised.
        sample: DType,
    },

    /// A scheduler name that is neither `euler` nor `unipc`.
    #[error("unknown scheduler {name:?}: expected \"euler\" or \"unipc\"")]
    UnknownKind {
        /// The name that was not recognised.
        name: String,
    },

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The scheduler module's result type.
pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;
