//! What one denoising step yields.
use candle_core::Tensor;

use super::capture::CaptureKind;

/// One layer's captures at one step (each present when requested).
#[derive(Debug, Clone)]
pub struct LayerCapture {
    pub layer_idx: usize,
    /// `(kind, tensor)`; shapes as documented on [`CaptureKind`].
    pub tensors: Vec<(CaptureKind, Tensor)>,
}

/// Everything recorded for one denoising step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step_idx: usize,
    /// Noise level entering the step.
    pub sigma: f64,
    /// Timestep the model was conditioned on.
    pub timestep: f64,
    /// `x_t`, the latent fed to the model, `[C, F, H, W]`.
    pub latents: Tensor,
    /// The velocity after guidance, `[C, F, H, W]`.
    pub velocity: Tensor,
    /// `x0_hat = x_t - sigma * v` (condition frames exactly the condition), `[C, F, H, W]`.
    pub x0: Tensor,
    /// Captures of the conditional pass, by layer.
    pub layers: Vec<LayerCapture>,
}
