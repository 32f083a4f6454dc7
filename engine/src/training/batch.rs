//! Training batches: fresh task instances, noised for flow matching the way the sampler
//! denoises them (Wan2.2 TI2V: the first frame stays clean and is conditioned on timestep 0).
//!
//! For clean videos `x0` and noise `eps`, `x_t = (1 - sigma) x0 + sigma eps` on the generated
//! frames (frame 0 keeps `x0`), the target is the velocity `v = eps - x0`, and the loss is the
//! mean squared error over the generated frames only. `sigma` is logit-normal:
//! `sigmoid(n)`, `n ~ N(0, 1)`, one per instance; its timestep is `1000 sigma`.
use candle_core::{DType, Device, Tensor};

use super::config::TrainConfig;
use super::error::{Result, TrainingError};
use crate::session::noise::gaussian_noise;
use crate::tasks::TaskKind;
use crate::tasks::rng::SplitMix64;

/// Training instance seeds have this bit set; held-out seeds (evaluation) are below it.
pub const TRAINING_SEED_BIT: u64 = 1 << 63;

/// One batch of `B` noised instances of one task and size.
#[derive(Debug, Clone)]
pub struct NoisedBatch {
    pub task: TaskKind,
    pub size: usize,
    /// `x_t` `[B, 3, F, H, W]`, frame 0 clean.
    pub latents: Tensor,
    /// `[B, N]`: `1000 sigma` on the tokens of generated frames, 0 on frame 0's.
    pub timesteps: Tensor,
    /// The velocity target `eps - x0`, `[B, 3, F, H, W]`.
    pub target: Tensor,
    /// `[1, 1, F, 1, 1]`: 1 on generated frames, 0 on the condition frame.
    pub generated: Tensor,
}

/// Draws a batch: a task of the mix and a size (uniformly), `batch_size` instances with fresh
/// seeds (training puzzles only: [`TaskKind::generate_for_training`]), noise and sigmas, all
/// from `rng`.
pub(crate) fn draw_batch(config: &TrainConfig, rng: &mut SplitMix64, device: &Device) -> Result<NoisedBatch> {
    let mix = &config.tasks[rng.below(config.tasks.len())];
    let kind = mix.kind()?;
    let size = rng.range(mix.min_size, mix.max_size);
    let params = mix.params(size);
    let mut videos = Vec::with_capacity(config.batch_size);
    for _ in 0..config.batch_size {
        let instance = kind.generate_for_training(rng.next_u64() | TRAINING_SEED_BIT, &params)?;
        videos.push(instance.ground_truth.to_tensor(device)?);
    }
    let x0 = Tensor::stack(&videos, 0)?;
    let eps = gaussian_noise(rng.next_u64(), x0.dims(), device)?;
    let normals = gaussian_noise(rng.next_u64(), config.batch_size, device)?;
    let sigmas: Vec<f32> = normals.to_vec1::<f32>()?.iter().map(|n| 1.0 / (1.0 + (-n).exp())).collect();
    noise_batch(kind, size, &x0, &eps, &sigmas)
}

/// Noises clean videos `x0` `[B, 3, F, H, W]` with `eps` (same shape) at `sigmas` (`B` values).
pub fn noise_batch(
    task: TaskKind,
    size: usize,
    x0: &Tensor,
    eps: &Tensor,
    sigmas: &[f32],
) -> Result<NoisedBatch> {
    let (batch, _, frames, height, width) = x0.dims5()?;
    if sigmas.len() != batch || frames < 2 {
        return Err(TrainingError::Setup(format!(
            "a batch of {batch} videos of {frames} frames cannot take {} sigmas",
            sigmas.len()
        )));
    }
    let device = x0.device();
    let mask: Vec<f32> = (0..frames).map(|frame| if frame == 0 { 0.0 } else { 1.0 }).collect();
    let generated = Tensor::from_vec(mask, (1, 1, frames, 1, 1), device)?;
    let sigma = Tensor::from_slice(sigmas, (batch, 1, 1, 1, 1), device)?;
    let target = (eps - x0)?;
    // x0 + sigma (eps - x0) on generated frames.
    let latents = (x0 + target.broadcast_mul(&sigma)?.broadcast_mul(&generated)?)?;
    let per_frame = (height / 2) * (width / 2);
    let mut timesteps = Vec::with_capacity(batch * frames * per_frame);
    for &sigma in sigmas {
        timesteps.extend(std::iter::repeat_n(0.0f32, per_frame));
        timesteps.extend(std::iter::repeat_n(1000.0 * sigma, (frames - 1) * per_frame));
    }
    let timesteps = Tensor::from_vec(timesteps, (batch, frames * per_frame), device)?;
    Ok(NoisedBatch { task, size, latents, timesteps, target, generated })
}

/// Mean squared error between `velocity` and the batch's target over the generated frames.
pub fn flow_matching_loss(velocity: &Tensor, batch: &NoisedBatch) -> Result<Tensor> {
    let (b, c, frames, h, w) = batch.target.dims5()?;
    let count = (b * c * (frames - 1) * h * w) as f64;
    let squared = (velocity.to_dtype(DType::F32)? - &batch.target)?.sqr()?.broadcast_mul(&batch.generated)?;
    Ok((squared.sum_all()? / count)?)
}
