//! Errors of a sampling session.
use crate::model::ModelError;
use crate::scheduler::SchedulerError;

/// What can stop a sampling session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Model(#[from] ModelError),

    #[error(transparent)]
    Scheduler(#[from] SchedulerError),

    #[error("invalid session setup: {0}")]
    Setup(String),

    #[error("invalid capture request: {0}")]
    Capture(String),

    #[error("the run is finished: all {steps} steps were taken")]
    Finished { steps: usize },

    #[error("cancelled before step {step_idx}")]
    Cancelled { step_idx: usize },

    /// Code inside the step panicked (a bug); the step was not taken.
    #[error("step {step_idx} panicked: {what}; the step was not taken (this is a bug: please report it)")]
    Panicked { step_idx: usize, what: String },

    /// A failure a test planned ([`super::fault`]).
    #[error("step {step_idx}: injected failure")]
    Injected { step_idx: usize },

    /// The model produced NaN or infinite values: the run stops at that step (not taken).
    #[error(
        "step {step_idx}: the {tensor} holds {count} non-finite values (NaN or infinity){}; the run \
         stops here (check the weights for NaN or infinity, or use f32)",
        .first_layer.map(|layer| format!(", first at block {layer} of the captured blocks")).unwrap_or_default()
    )]
    NonFinite { step_idx: usize, tensor: &'static str, count: usize, first_layer: Option<usize> },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for sessions.
pub type Result<T> = std::result::Result<T, SessionError>;
