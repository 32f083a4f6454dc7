//! Errors of the trainer.
use std::path::PathBuf;

/// What can go wrong while training, checkpointing or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("invalid training setup: {0}")]
    Setup(String),

    #[error("{path}: not a usable training checkpoint: {what}")]
    Checkpoint { path: PathBuf, what: String },

    #[error("{path}: cannot {action}: {cause}")]
    Io { path: PathBuf, action: &'static str, cause: std::io::Error },

    #[error("the loss is not finite at step {step_idx} ({loss}); lower the learning rate")]
    Diverged { step_idx: u64, loss: f32 },

    #[error(transparent)]
    Model(#[from] crate::model::ModelError),

    #[error(transparent)]
    Task(#[from] crate::tasks::TaskError),

    #[error(transparent)]
    Session(#[from] crate::session::SessionError),

    #[error(transparent)]
    File(#[from] crate::trajectory::TrajectoryError),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for training.
pub type Result<T> = std::result::Result<T, TrainingError>;
