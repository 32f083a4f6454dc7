//! Errors of the task generators and scorers.

/// What can go wrong when making or scoring a task instance.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("unknown task {0:?} (known: maze, symmetry, gravity, flood_fill, rotation)")]
    UnknownTask(String),

    #[error("invalid task parameters: {0}")]
    Params(String),

    #[error("a task video is [3, F, H, W] with F >= 1; got {0}")]
    Shape(String),

    #[error("the video to score is {found_height}x{found_width} pixels, the task is {height}x{width}")]
    SizeMismatch { height: usize, width: usize, found_height: usize, found_width: usize },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for tasks.
pub type Result<T> = std::result::Result<T, TaskError>;
