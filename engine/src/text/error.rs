//! What can go wrong reading a text encoder or encoding a prompt; each names the file or step.

use std::path::PathBuf;

use crate::part_error::PartError;

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Part(#[from] PartError),

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
