//! The VAE's `config.json` (diffusers' `AutoencoderKLWan`).

use std::path::Path;

use serde::Deserialize;

use super::VaeError;
use crate::model::config::{MAX_CONFIG_BYTES, read_capped};
use crate::part_error::PartError;

/// What the decoder needs of an `AutoencoderKLWan` config, with diffusers' field names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WanVaeConfig {
    pub base_dim: usize,
    /// The decoder's base width where it differs from the encoder's.
    #[serde(default)]
    pub decoder_base_dim: Option<usize>,
    /// Latent channels (16 for Wan2.1, 48 for Wan2.2's VAE).
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Which down-sampling stages also halve time (the decoder doubles time in reverse order).
    pub temperal_downsample: Vec<bool>,
    #[serde(default)]
    pub is_residual: bool,
    #[serde(default)]
    pub patch_size: Option<usize>,
    /// The encoder's input channels (3, or 12 for Wan2.2's patch-folded pixels).
    #[serde(default = "default_out_channels")]
    pub in_channels: usize,
    #[serde(default = "default_out_channels")]
    pub out_channels: usize,
    pub latents_mean: Vec<f32>,
    pub latents_std: Vec<f32>,
    #[serde(default)]
    pub attn_scales: Vec<f64>,
}

fn default_out_channels() -> usize {
    3
}

impl WanVaeConfig {
    /// Reads and checks `config.json` (at most 1 MiB).
    pub fn from_file(path: &Path) -> Result<Self, VaeError> {
        let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|cause| PartError::Read {
            path: path.to_owned(),
            what: "the VAE's config",
            cause,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|err| PartError::Config {
            path: path.to_owned(),
            what: format!("not an AutoencoderKLWan config: {err}"),
        })?;
        config.validate().map_err(|what| PartError::Config { path: path.to_owned(), what })?;
        Ok(config)
    }

    /// Checks what the decoder relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.patch_size.is_some_and(|patch| patch > 8)
            || (self.is_residual != self.patch_size.is_some_and(|p| p > 1))
        {
            return Err(format!(
                "residual blocks {} with patch size {:?}: Wan2.1's VAE has neither, Wan2.2's both",
                self.is_residual, self.patch_size
            ));
        }
        if self.dim_mult.len() != self.temperal_downsample.len() + 1 {
            return Err(format!(
                "dim_mult has {} entries and temperal_downsample {}: it needs one more",
                self.dim_mult.len(),
                self.temperal_downsample.len()
            ));
        }
        if self.latents_mean.len() != self.z_dim || self.latents_std.len() != self.z_dim {
            return Err(format!("latents_mean and latents_std need z_dim = {} values each", self.z_dim));
        }
        for (name, value, limit) in [
            ("base_dim", self.decoder_base(), 4096),
            ("z_dim", self.z_dim, 4096),
            ("in_channels", self.in_channels, 4096),
            ("out_channels", self.out_channels, 4096),
            ("num_res_blocks", self.num_res_blocks, 64),
            ("dim_mult entries", self.dim_mult.len(), 16),
            ("largest dim_mult", self.dim_mult.iter().copied().max().unwrap_or(0), 64),
        ] {
            if value == 0 || value > limit {
                return Err(format!("{name} is {value}, outside 1..={limit}"));
            }
        }
        if !self.attn_scales.is_empty() {
            return Err("attention at up-sampling scales (attn_scales) is not supported".to_owned());
        }
        Ok(())
    }

    /// Pixels per latent pixel along height and width: one halving per down-sampling stage,
    /// times the patch (8 for Wan2.1's VAE, 16 for Wan2.2's).
    #[must_use]
    pub fn spatial_factor(&self) -> usize {
        (1 << self.dim_mult.len().saturating_sub(1)) * self.patch_size.unwrap_or(1)
    }

    /// The decoder's base width.
    #[must_use]
    pub fn decoder_base(&self) -> usize {
        self.decoder_base_dim.unwrap_or(self.base_dim)
    }
}
