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

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for sessions.
pub type Result<T> = std::result::Result<T, SessionError>;
