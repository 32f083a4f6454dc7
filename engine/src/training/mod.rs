//! Training a small pixel-space Wan on the tasks, in candle on the CPU.
//!
//! The recipe ([`TrainConfig::recipe`]): flow matching (`x_t = (1 - sigma) x0 + sigma eps`,
//! target `v = eps - x0`) with logit-normal `sigma`; Wan2.2 TI2V conditioning as the sampler
//! does it (the clean first frame at timestep 0, no loss on it); a learned prompt embedding
//! `[1, L, text_dim]` per task in place of a text encoder; `AdamW` with warm-up and gradient
//! clipping; an exponential moving average of the weights, which is what gets exported.
//! Every batch holds fresh instances of one task and size, from a seeded `splitmix64` stream, so
//! a run is reproducible from its seed and resumes exactly from a checkpoint.
//!
//! Files: [`config`] (the recipe), [`params`] (initialisation, named `Var`s), [`batch`]
//! (instances -> noised batch, the loss), [`optim`] (`AdamW`, clipping, EMA), [`trainer`] (the
//! loop), [`checkpoint`] (resumable state and the exported diffusers folder), [`eval`]
//! (held-out solve rates with the engine's sampler), [`stream`] (what a model was trained on).
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod optim;
pub mod params;
pub mod stream;
pub mod trainer;

#[cfg(test)]
mod tests;

pub use config::{TaskMix, TrainConfig};
pub use error::{Result, TrainingError};
pub use eval::{
    EvalPlan, EvalResult, SamplerSettings, StepCurve, ToleranceOutcome, evaluate, inference_model,
    task_conditioning,
};
pub use stream::{StreamRange, StreamSplit, TRAINING_STREAM_FILE, TrainingStream};
pub use trainer::{StepStats, Trainer};
