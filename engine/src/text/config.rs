//! The text encoder's `config.json` (transformers' `UMT5Config`, the encoder half used).

use std::path::Path;

use serde::Deserialize;

use super::error::TextError;
use crate::model::config::{MAX_CONFIG_BYTES, read_capped};
use crate::part_error::PartError;

/// What the encoder needs of a `UMT5Config`, with transformers' field names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Umt5Config {
    pub vocab_size: usize,
    /// Width of the hidden states `D`.
    pub d_model: usize,
    /// Width of one attention head.
    pub d_kv: usize,
    /// Width of the gated feed-forward layer.
    pub d_ff: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    /// `gated-gelu` in every UMT5 checkpoint (Wan's included).
    #[serde(default = "default_feed_forward")]
    pub feed_forward_proj: String,
}

fn default_buckets() -> usize {
    32
}

fn default_max_distance() -> usize {
    128
}

fn default_eps() -> f64 {
    1e-6
}

fn default_feed_forward() -> String {
    "gated-gelu".to_owned()
}

/// The largest value each size may take: far above umt5-xxl (24 layers of 64 heads of 64, a
/// width of 4096, a feed-forward of 10,240, 256,384 tokens), far below what would exhaust memory
/// first.
const SIZE_LIMITS: [(&str, usize); 7] = [
    ("vocab_size", 1 << 21),
    ("d_model", 1 << 15),
    ("d_kv", 1 << 12),
    ("d_ff", 1 << 17),
    ("num_layers", 256),
    ("num_heads", 1 << 10),
    ("relative_attention_num_buckets", 1 << 12),
];

impl Umt5Config {
    /// Reads and checks the encoder's `config.json` (at most 1 MiB; the sizes bounded).
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|cause| PartError::Read {
            path: path.to_owned(),
            what: "the text encoder's config",
            cause,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|cause| PartError::Config {
            path: path.to_owned(),
            what: format!("not a UMT5 config: {cause}"),
        })?;
        config.validate().map_err(|what| PartError::Config { path: path.to_owned(), what })?;
        Ok(config)
    }

    /// Checks what the forward pass relies on.
    pub fn validate(&self) -> Result<(), String> {
        for (name, limit) in SIZE_LIMITS {
            let value = match name {
                "vocab_size" => self.vocab_size,
                "d_model" => self.d_model,
                "d_kv" => self.d_kv,
                "d_ff" => self.d_ff,
                "num_layers" => self.num_layers,
                "num_heads" => self.num_heads,
                _ => self.relative_attention_num_buckets,
            };
            if value == 0 || value > limit {
                return Err(format!("{name} is {value}, outside 1..={limit}"));
            }
        }
        if self.relative_attention_num_buckets < 4
            || self.relative_attention_max_distance <= self.relative_attention_num_buckets / 4
        {
            return Err(format!(
                "relative attention needs at least 4 buckets and a max distance above a quarter of them, got {} and {}",
                self.relative_attention_num_buckets, self.relative_attention_max_distance
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(format!(
                "layer_norm_epsilon must be a positive number, got {}",
                self.layer_norm_epsilon
            ));
        }
        if self.feed_forward_proj != "gated-gelu" {
            return Err(format!(
                "feed_forward_proj `{}` is not supported (UMT5, as Wan uses it, is gated-gelu)",
                self.feed_forward_proj
            ));
        }
        Ok(())
    }

    /// `num_heads * d_kv`, the width of the attention projections.
    #[must_use]
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }
}
