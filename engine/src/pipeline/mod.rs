//! A diffusers Wan pipeline folder (`model_index.json`, `transformer/`, `text_encoder/`,
//! `tokenizer/`, `vae/`, `scheduler/`), as `WanPipeline.save_pretrained` writes it and the
//! published Wan2.1 / Wan2.2 `-Diffusers` repositories hold it: where each part is, and the
//! sampler its scheduler config sets.
pub mod folder;
pub mod memory;

pub use folder::{PipelineError, PipelineFolder, SchedulerSetting};
pub use memory::{PartMemory, PipelineMemory, estimate_pipeline};
