//! The Wan VAE (diffusers' `AutoencoderKLWan`) in candle: the decoders of Wan2.1 (16 channels)
//! and Wan2.2 (48 channels, residual, patch size 2), run as diffusers runs them (causal, one latent frame at a time, so that memory stays that of one
//! chunk), for decoded frames of `x0_hat` at any step. Latents are de-normalised with the
//! config's `latents_mean` / `latents_std` first, as the pipeline does before `vae.decode`.
pub mod config;
pub mod decoder;
pub mod layers;

use std::path::Path;

use crate::part_error::PartError;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::WanVaeConfig;
pub use decoder::WanVaeDecoder;

/// What is wrong with a VAE folder or a decode, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum VaeError {
    #[error(transparent)]
    Part(#[from] PartError),

    #[error("decoding: latents of {found} channels, but the VAE takes {expected}")]
    Channels { expected: usize, found: usize },

    #[error("the decode was cancelled")]
    Cancelled,

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A Wan VAE, ready to decode.
#[derive(Debug, Clone)]
pub struct WanVae {
    config: WanVaeConfig,
    decoder: WanVaeDecoder,
    /// `[1, z, 1, 1, 1]` each.
    mean: Tensor,
    std: Tensor,
}

impl WanVae {
    /// Loads `dir/config.json` and `dir/diffusion_pytorch_model.safetensors` as `dtype` on
    /// `device`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, VaeError> {
        let config = WanVaeConfig::from_file(&dir.join("config.json"))?;
        let weights = dir.join("diffusion_pytorch_model.safetensors");
        let mapped = crate::model::checkpoint::map_weights(std::slice::from_ref(&weights))
            .map_err(|err| PartError::Weights { path: weights.clone(), what: err.to_string() })?;
        let vb = VarBuilder::from_backend(Box::new(mapped), dtype, device.clone());
        let decoder = WanVaeDecoder::load(&vb, &config)
            .map_err(|err| PartError::Weights { path: weights.clone(), what: err.to_string() })?;
        let z = config.z_dim;
        let mean = Tensor::from_vec(config.latents_mean.clone(), (1, z, 1, 1, 1), device)?.to_dtype(dtype)?;
        let std = Tensor::from_vec(config.latents_std.clone(), (1, z, 1, 1, 1), device)?.to_dtype(dtype)?;
        Ok(Self { config, decoder, mean, std })
    }

    #[must_use]
    pub fn config(&self) -> &WanVaeConfig {
        &self.config
    }

    /// A step's `x0_hat` `[z, F, h, w]` (normalised latents, as the transformer sees them)
    /// decoded to the video `[3, 1 + 4 (F - 1), 8h, 8w]` in `[-1, 1]`, f32.
    pub fn decode_latents(&self, latents: &Tensor) -> Result<Tensor, VaeError> {
        self.decode_latents_unless(latents, &|| false)?.ok_or(VaeError::Cancelled)
    }

    /// [`Self::decode_latents`], giving up between two latent frames once `cancelled` says so
    /// (`None`): a live run's newer request replaces the decode in progress.
    pub fn decode_latents_unless(
        &self,
        latents: &Tensor,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Tensor>, VaeError> {
        let found = latents.dim(0)?;
        if found != self.config.z_dim {
            return Err(VaeError::Channels { expected: self.config.z_dim, found });
        }
        let z = latents.unsqueeze(0)?.to_dtype(self.mean.dtype())?;
        let z = z.broadcast_mul(&self.std)?.broadcast_add(&self.mean)?;
        let Some(video) = self.decoder.decode_unless(&z, cancelled)? else { return Ok(None) };
        Ok(Some(video.squeeze(0)?.to_dtype(DType::F32)?))
    }
}
