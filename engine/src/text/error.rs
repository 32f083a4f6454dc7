//! What can go wrong reading a text encoder or encoding a prompt; each names the file or step.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{}: cannot read {what}: {cause}", .path.display())]
    Read { path: PathBuf, what: &'static str, cause: std::io::Error },

    #[error("{}: {what}", .path.display())]
    Config { path: PathBuf, what: String },

    #[error("{}: {what}", .path.display())]
    Weights { path: PathBuf, what: String },

    #[error("{}: the tokenizer does not load: {cause}", .path.display())]
    Tokenizer { path: PathBuf, cause: String },

    #[error("tokenizing the prompt: {0}")]
    Tokenize(String),

    #[error(
        "the tokenizer gave token {id}, but the encoder knows {vocab_size} tokens: they do not belong together"
    )]
    TokenOutOfVocabulary { id: u32, vocab_size: usize },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
