//! Clean condition frames, Wan2.2 TI2V style: the first latent frames hold the (encoded) input
//! image, their tokens are conditioned on timestep 0, and they are put back after every step.
use candle_core::{DType, Tensor};

use super::error::{Result, SessionError};
use crate::model::TokenGrid;

/// The condition laid out over the whole latent.
#[derive(Debug, Clone)]
pub struct ConditionFrames {
    /// 1 on generated frames, 0 on condition frames: `[1, 1, F, 1, 1]`.
    generated: Tensor,
    /// The condition padded with zeros to the latent's frames: `[1, C, F, H, W]`.
    padded: Tensor,
    /// Per latent frame: whether it is generated.
    generated_frames: Vec<bool>,
}

impl ConditionFrames {
    /// Lays out `condition` `[C, F_c, H, W]` over a latent of `latent_shape` `[C, F, H, W]`;
    /// `F_c` must be a multiple of the temporal patch `p_t` so tokens do not straddle it.
    pub fn new(condition: &Tensor, latent_shape: [usize; 4], p_t: usize) -> Result<Self> {
        let [channels, frames, height, width] = latent_shape;
        let condition_frames = condition.dim(1)?;
        if condition_frames % p_t != 0 {
            return Err(SessionError::Setup(format!(
                "the condition has {condition_frames} frames, not a multiple of the temporal patch {p_t}"
            )));
        }
        let device = condition.device();
        let generated_frames: Vec<bool> = (0..frames).map(|frame| frame >= condition_frames).collect();
        let mask: Vec<f32> = generated_frames.iter().map(|&g| if g { 1.0 } else { 0.0 }).collect();
        let generated = Tensor::from_vec(mask, (1, 1, frames, 1, 1), device)?;
        let padding =
            Tensor::zeros((channels, frames - condition_frames, height, width), DType::F32, device)?;
        let padded = Tensor::cat(&[condition.to_dtype(DType::F32)?, padding], 1)?.unsqueeze(0)?;
        Ok(Self { generated, padded, generated_frames })
    }

    /// `generated * latents + (1 - generated) * condition` for latents `[1, C, F, H, W]`.
    pub fn impose(&self, latents: &Tensor) -> Result<Tensor> {
        let keep = latents.broadcast_mul(&self.generated)?;
        let clean = self.padded.broadcast_mul(&self.generated.affine(-1.0, 1.0)?)?;
        Ok((keep + clean)?)
    }

    /// Per-token timesteps `[1, N]`: `timestep` on generated tokens, 0 on condition tokens.
    /// Tokens run frame-major; token frame `i` covers latent frames `i * p_t ..`.
    pub fn token_timesteps(&self, timestep: f64, grid: TokenGrid, p_t: usize) -> Result<Tensor> {
        let per_frame = grid.rows * grid.cols;
        let values: Vec<f32> = (0..grid.frames)
            .flat_map(|token_frame| {
                let value = if self.generated_frames[token_frame * p_t] { timestep as f32 } else { 0.0 };
                std::iter::repeat_n(value, per_frame)
            })
            .collect();
        Ok(Tensor::from_vec(values, (1, grid.len()), self.generated.device())?)
    }
}
