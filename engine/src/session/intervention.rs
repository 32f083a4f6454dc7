//! Interventions: forks of a run altered by hand, to test self-correction and working memory.
//! A fork can start from a painted prediction (the previous step's `x0_hat` overwritten at some
//! pixels, the noise in the latent kept) or run with transformer blocks knocked out.
use candle_core::{DType, Tensor};

use super::SamplingSession;
use super::error::{Result, SessionError};
use crate::model::ForwardProbe;

impl SamplingSession {
    /// `probe` with this session's skipped blocks.
    pub(crate) fn forward_probe(&self, probe: ForwardProbe) -> ForwardProbe {
        ForwardProbe { skip_layers: self.skip_layers.clone(), ..probe }
    }

    /// The blocks this session skips.
    #[must_use]
    pub fn skipped_layers(&self) -> &[usize] {
        &self.skip_layers
    }

    /// Copies this session at its current step with `layers` skipped in every forward pass
    /// from now on (in addition to any already skipped).
    pub fn fork_skipping(&self, layers: &[usize]) -> Result<Self> {
        let num_layers = self.model.num_layers();
        if layers.is_empty() {
            return Err(SessionError::Setup("name at least one layer to skip".to_owned()));
        }
        if let Some(bad) = layers.iter().find(|&&layer| layer >= num_layers) {
            return Err(SessionError::Setup(format!(
                "layer {bad} does not exist (the model has {num_layers})"
            )));
        }
        let mut fork = self.fork_with_latents(&self.latents()?)?;
        fork.skip_layers.extend_from_slice(layers);
        fork.skip_layers.sort_unstable();
        fork.skip_layers.dedup();
        Ok(fork)
    }

    /// Copies this session at its current step `k` as if the previous step had predicted
    /// `last_x0` (`[C, F, H, W]`, step `k - 1`'s `x0_hat`) with `pixels` (`[frame, y, x]` of the
    /// latent) painted `value` (one number per channel):
    /// `x_t' = x_t + (1 - sigma_k) (x0' - x0)`, so the noise in the latent is kept. For the
    /// Euler solver this is exactly the latent that step would have produced from `x0'`.
    pub fn fork_painted(&self, last_x0: &Tensor, pixels: &[[usize; 3]], value: &[f32]) -> Result<Self> {
        let sigma = self.current_sigma()?;
        let painted = self.paint(last_x0, pixels, value)?;
        let delta = (painted - last_x0.to_dtype(DType::F32)?)?;
        let latents = (self.latents()? + (delta * (1.0 - sigma))?)?;
        self.fork_with_latents(&latents)
    }

    /// `x0` `[C, F, H, W]` with `pixels` set to `value`.
    fn paint(&self, x0: &Tensor, pixels: &[[usize; 3]], value: &[f32]) -> Result<Tensor> {
        let shape = self.latent_shape();
        let [channels, frames, height, width] = shape;
        if x0.dims() != shape {
            return Err(SessionError::Setup(format!(
                "the prediction to paint has shape {:?}, the run's latent is {shape:?}",
                x0.dims()
            )));
        }
        if value.len() != channels {
            return Err(SessionError::Setup(format!(
                "the paint has {} channel values; the latent has {channels} channels",
                value.len()
            )));
        }
        if pixels.is_empty() {
            return Err(SessionError::Setup("nothing to paint: no pixels given".to_owned()));
        }
        if let Some(bad) = pixels.iter().find(|[f, y, x]| *f >= frames || *y >= height || *x >= width) {
            return Err(SessionError::Setup(format!(
                "pixel {bad:?} is outside the {frames} x {height} x {width} latent"
            )));
        }
        let mut values = x0.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for &[frame, y, x] in pixels {
            for (channel, &v) in value.iter().enumerate() {
                values[((channel * frames + frame) * height + y) * width + x] = v;
            }
        }
        Ok(Tensor::from_vec(values, shape.to_vec(), x0.device())?)
    }
}
