//! What a run is given: conditioning, settings, and where its noise comes from.
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::capture::CaptureSpec;
use crate::scheduler::SchedulerKind;

/// What conditions a run: prompt embeddings, optional negative embeddings for guidance, and an
/// optional clean condition (the first latent frames, Wan2.2 TI2V style).
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `[1, L, text_dim]`
    pub prompt_embeds: Tensor,
    /// `[1, L', text_dim]`, required when the guidance scale exceeds 1.
    pub negative_prompt_embeds: Option<Tensor>,
    /// `[C, F_c, H, W]`: the first `F_c` latent frames, kept clean (timestep 0) and re-imposed
    /// after every step.
    pub condition_latent: Option<Tensor>,
}

/// The settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSettings {
    pub steps: usize,
    /// Timestep shift (Wan: 3.0 at 480p, 5.0 at 720p).
    pub shift: f64,
    pub scheduler: SchedulerKind,
    /// Classifier-free guidance scale; guidance applies when it is above 1.
    pub guidance_scale: f64,
    pub capture: CaptureSpec,
}

/// Where a run's initial noise comes from.
#[derive(Debug, Clone)]
pub enum NoiseSource {
    /// [`noise::gaussian_noise`] from this seed.
    Seed(u64),
    /// A given tensor `[C, F, H, W]`.
    Given(Tensor),
}
