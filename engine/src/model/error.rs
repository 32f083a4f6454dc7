//! Errors raised while loading or running the Wan transformer.
use std::path::PathBuf;

/// What went wrong loading a checkpoint or running the model. Every variant names the file or
/// tensor involved, so the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model directory {dir}: {what}")]
    Directory { dir: PathBuf, what: String },

    #[error("{path}: cannot read the model config: {cause}")]
    ConfigRead { path: PathBuf, cause: std::io::Error },

    #[error("{path}: the model config is not valid diffusers JSON: {cause}")]
    ConfigParse { path: PathBuf, cause: serde_json::Error },

    #[error("model config: {0}")]
    ConfigInvalid(String),

    #[error("{path}: cannot open the weights: {cause}")]
    Weights { path: PathBuf, cause: candle_core::Error },

    #[error("checkpoint is missing tensor `{key}` (expected shape {expected:?})")]
    MissingTensor { key: String, expected: Vec<usize> },

    #[error("checkpoint tensor `{key}` has shape {found:?}, the config implies {expected:?}")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("checkpoint tensor `{key}` has dtype {found}, which cannot be loaded as a float")]
    UnsupportedDtype { key: String, found: String },

    #[error("invalid model input: {0}")]
    Input(String),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for the model.
pub type Result<T> = std::result::Result<T, ModelError>;
