//! The Wan pipelines' text encoder in candle: UMT5's encoder ([`umt5`]), its config
//! ([`config`]), and a typed prompt made into the embeddings the transformer takes, as diffusers'
//! `WanPipeline` makes them ([`prompt`]: cleaning, tokenizing with the pipeline's
//! `tokenizer.json`, padding, zeroing past the prompt).
pub mod cache;
pub mod config;
pub mod error;
pub mod prompt;
pub mod umt5;

pub use cache::{EmbeddingCache, encode_prompts};
pub use config::Umt5Config;
pub use error::TextError;
pub use prompt::{PromptEncoder, PromptTokens, clean_prompt};
pub use umt5::Umt5Encoder;
