//! Stepscope's engine: everything the app shows, computed without a window.
//!
//! - [`model`]: the Wan video diffusion transformer (diffusers' `WanTransformer3DModel`) in candle,
//!   loaded from a diffusers checkpoint directory by key name.
//! - [`scheduler`]: flow-matching schedules and solvers (Euler, UniPC) as Wan uses them.
//! - [`session`]: a sampling run advanced one denoising step at a time, with optional captures.
//! - [`tasks`]: VBVR-style reasoning tasks (maze, symmetry, gravity, flood fill) as small RGB
//!   videos, with rule-based scorers that read pixels only.
//! - [`trajectory`]: the trajectory file format (safetensors + a JSON manifest).
//! - [`analysis`]: statistics over a recorded or live run (seed distances, step x frame maps).
//! - [`text`]: the pipelines' text encoder (UMT5) and a typed prompt made into embeddings.
//! - [`pipeline`]: a diffusers Wan pipeline folder, its parts and its scheduler.
//! - [`vae`]: the Wan VAEs' decoders and encoders: decoded frames of any step's `x0_hat`, and an
//!   image-to-video run's first latent frame.
//! - [`device`]: the device a run computes on, by name (`auto`, `cpu`, `cuda:N`, `metal`).
//! - [`training`]: trains a small pixel-space Wan on the tasks (flow matching, `AdamW`, EMA),
//!   with checkpoints that resume and export to the diffusers layout the model loads.
//!
//! Conventions: latents are `[C, F, H, W]` for one sample (`[B, C, F, H, W]` inside the model);
//! flow matching is `x_t = (1 - sigma) x0 + sigma eps`, the model predicts `v = eps - x0`.
pub mod analysis;
pub mod device;
pub mod model;
pub mod part_error;
pub mod pipeline;
pub mod recording;
pub mod scheduler;
pub mod session;
pub mod tasks;
pub mod tensor_file;
pub mod text;
pub mod training;
pub mod trajectory;
pub mod vae;
pub mod worker;
