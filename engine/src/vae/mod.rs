//! The Wan VAE (diffusers' `AutoencoderKLWan`) in candle: the decoders and encoders of Wan2.1
//! (16 channels) and Wan2.2 (48 channels, residual, patch size 2), run as diffusers runs them
//! (causal, a chunk of frames at a time, so that memory stays that of one chunk): decoded frames
//! of `x0_hat` at any step, and the latent of an image-to-video run's first frame. Latents are
//! de-normalised with the config's `latents_mean` / `latents_std` before `vae.decode` and
//! normalised after `vae.encode`, as the pipelines do.
pub mod config;
pub mod decoder;
pub mod down_layers;
pub mod encoder;
pub mod layers;

use std::path::Path;

use crate::part_error::PartError;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::WanVaeConfig;
pub use decoder::WanVaeDecoder;
pub use encoder::WanVaeEncoder;

/// What is wrong with a VAE folder or a decode, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum VaeError {
    #[error(transparent)]
    Part(#[from] PartError),

    #[error("decoding: latents of {found} channels, but the VAE takes {expected}")]
    Channels { expected: usize, found: usize },

    #[error("encoding: a video of {found} channels, but the VAE takes {expected} (RGB)")]
    VideoChannels { expected: usize, found: usize },

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

/// A VAE folder's config, its weights and its latent normalisation, `[1, z, 1, 1, 1]` each.
struct VaeParts {
    config: WanVaeConfig,
    weights: std::path::PathBuf,
    vb: VarBuilder<'static>,
    mean: Tensor,
    std: Tensor,
}

impl VaeParts {
    /// Maps `dir/diffusion_pytorch_model.safetensors` as `dtype` on `device`, with
    /// `dir/config.json`. On the CPU a bf16 VAE computes in f32: candle's CPU matmul has no bf16
    /// (the mid block's attention needs one), and the VAE is small (Wan2.1's 0.5 GB in f32).
    fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self, VaeError> {
        let dtype = if device.is_cpu() && dtype == DType::BF16 { DType::F32 } else { dtype };
        let config = WanVaeConfig::from_file(&dir.join("config.json"))?;
        let weights = dir.join("diffusion_pytorch_model.safetensors");
        let mapped = crate::model::checkpoint::map_weights(std::slice::from_ref(&weights))
            .map_err(|err| PartError::Weights { path: weights.clone(), what: err.to_string() })?;
        let vb = VarBuilder::from_backend(Box::new(mapped), dtype, device.clone());
        let z = config.z_dim;
        let mean = Tensor::from_vec(config.latents_mean.clone(), (1, z, 1, 1, 1), device)?.to_dtype(dtype)?;
        let std = Tensor::from_vec(config.latents_std.clone(), (1, z, 1, 1, 1), device)?.to_dtype(dtype)?;
        Ok(Self { config, weights, vb, mean, std })
    }

    fn weights_error(&self, err: &candle_core::Error) -> PartError {
        PartError::Weights { path: self.weights.clone(), what: err.to_string() }
    }
}

impl WanVae {
    /// Loads `dir/config.json` and the decoder of `dir/diffusion_pytorch_model.safetensors` as
    /// `dtype` on `device`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, VaeError> {
        let parts = VaeParts::open(dir, dtype, device)?;
        let decoder =
            WanVaeDecoder::load(&parts.vb, &parts.config).map_err(|err| parts.weights_error(&err))?;
        Ok(Self { decoder, config: parts.config, mean: parts.mean, std: parts.std })
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

/// A Wan VAE's encoder with the latent normalisation: RGB in, latents as the transformer sees
/// them out (an image-to-video run's first frame).
#[derive(Debug, Clone)]
pub struct WanVaeEncoding {
    config: WanVaeConfig,
    encoder: WanVaeEncoder,
    /// `[1, z, 1, 1, 1]` each.
    mean: Tensor,
    std: Tensor,
}

impl WanVaeEncoding {
    /// Loads the encoder of `dir/diffusion_pytorch_model.safetensors` as `dtype` on `device`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, VaeError> {
        let parts = VaeParts::open(dir, dtype, device)?;
        let encoder =
            WanVaeEncoder::load(&parts.vb, &parts.config).map_err(|err| parts.weights_error(&err))?;
        Ok(Self { encoder, config: parts.config, mean: parts.mean, std: parts.std })
    }

    /// Video pixels per latent pixel along height and width.
    #[must_use]
    pub fn spatial_factor(&self) -> usize {
        self.config.spatial_factor()
    }

    /// A video `[3, 1 + 4k, H, W]` in `[-1, 1]` to its normalised latents `[z, 1 + k, h, w]`
    /// (f32): `(mean_of(vae.encode(video)) - latents_mean) / latents_std`, as
    /// `WanImageToVideoPipeline.prepare_latents` makes its condition.
    pub fn encode_video(&self, video: &Tensor) -> Result<Tensor, VaeError> {
        let found = video.dim(0)?;
        if found != 3 {
            return Err(VaeError::VideoChannels { expected: 3, found });
        }
        let x = video.unsqueeze(0)?.to_dtype(self.mean.dtype())?;
        let latents = self.encoder.encode(&x)?;
        let normalised = latents.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        Ok(normalised.squeeze(0)?.to_dtype(DType::F32)?)
    }
}
