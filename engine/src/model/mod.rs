//! The Wan video diffusion transformer (diffusers' `WanTransformer3DModel`) in candle.
//!
//! Module paths mirror the checkpoint keys (`blocks.N.attn1.to_q`, ...), so diffusers-format
//! checkpoints load by name. One file per component:
//! [`config`] (the `config.json`), [`checkpoint`] (files and key/shape checks),
//! [`embeddings`] (patchify, timestep and text), [`rope`] (3-D rotary), [`kernels`] (fused or
//! differentiable RMSNorm/softmax), [`memory`] (what a model needs before it loads), [`attention`],
//! [`block`], [`transformer`] (the whole network and its output head).
pub mod attention;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod embeddings;
pub mod error;
pub mod kernels;
pub mod memory;
pub mod rope;
pub mod transformer;

pub use config::WanConfig;
pub use embeddings::TokenGrid;
pub use error::ModelError;
pub use kernels::Kernels;
pub use memory::{MemoryEstimate, estimate_memory};
pub use transformer::{ForwardInput, ForwardOutput, ForwardProbe, LayerTrace, WanTransformer};
