//! The transformer's hyper-parameters, read from a diffusers `config.json`.
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

/// Hyper-parameters of diffusers' `WanTransformer3DModel`, with diffusers' field names and
/// defaults, so a checkpoint's `config.json` deserializes as it is (unknown keys such as
/// `_class_name` are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WanConfig {
    /// `(p_t, p_h, p_w)`: the Conv3d patchifier's kernel and stride.
    pub patch_size: [usize; 3],
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub in_channels: usize,
    /// `None` (or absent) means the same as `in_channels`, as in diffusers.
    pub out_channels: Option<usize>,
    pub text_dim: usize,
    /// Width of the sinusoidal timestep embedding.
    pub freq_dim: usize,
    pub ffn_dim: usize,
    pub num_layers: usize,
    /// Whether blocks carry the affine `norm2` before cross-attention.
    pub cross_attn_norm: bool,
    pub qk_norm: Option<String>,
    pub eps: f64,
    /// Wan2.1 image-to-video's CLIP image branch (not supported: must be `None`).
    pub image_dim: Option<usize>,
    pub added_kv_proj_dim: Option<usize>,
    pub rope_max_seq_len: usize,
    pub pos_embed_seq_len: Option<usize>,
}

impl Default for WanConfig {
    /// diffusers' constructor defaults (the Wan2.1 14B shape).
    fn default() -> Self {
        Self {
            patch_size: [1, 2, 2],
            num_attention_heads: 40,
            attention_head_dim: 128,
            in_channels: 16,
            out_channels: Some(16),
            text_dim: 4096,
            freq_dim: 256,
            ffn_dim: 13824,
            num_layers: 40,
            cross_attn_norm: true,
            qk_norm: Some("rms_norm_across_heads".to_owned()),
            eps: 1e-6,
            image_dim: None,
            added_kv_proj_dim: None,
            rope_max_seq_len: 1024,
            pos_embed_seq_len: None,
        }
    }
}

/// A model's `config.json` is a few hundred bytes; more than this is not one (a config linked to
/// `/dev/zero` would otherwise be read until memory runs out).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The keys diffusers writes into every `WanTransformer3DModel` config: a config without one is
/// not a complete Wan config, and is refused rather than filled with the 14B defaults.
pub const REQUIRED_KEYS: [&str; 9] = [
    "patch_size",
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "out_channels",
    "text_dim",
    "freq_dim",
    "ffn_dim",
    "num_layers",
];

/// The largest value each size may take: far above any released Wan model (the 14B has 40
/// layers of 40 heads of 128, an FFN of 13,824), far below what would exhaust memory or time
/// before a single weight is compared.
const SIZE_LIMITS: [(&str, usize); 10] = [
    ("num_layers", 512),
    ("num_attention_heads", 1024),
    ("attention_head_dim", 1024),
    ("in_channels", 4096),
    ("out_channels", 4096),
    ("text_dim", 65_536),
    ("freq_dim", 65_536),
    ("ffn_dim", 1 << 20),
    ("rope_max_seq_len", 1 << 20),
    ("patch_size entries", 64),
];

/// Reads at most `limit` bytes of the text file at `path`; more is an error saying so.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes: not a model config"),
        ));
    }
    Ok(text)
}

impl WanConfig {
    /// Reads and validates a diffusers `config.json` (at most [`MAX_CONFIG_BYTES`], every key of
    /// [`REQUIRED_KEYS`] present, every size within its bound).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_capped(path, MAX_CONFIG_BYTES)
            .map_err(|source| ModelError::ConfigRead { path: path.to_owned(), cause: source })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates the text of a diffusers `config.json` as [`Self::from_file`] does;
    /// `path` only names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|source| ModelError::ConfigParse { path: path.to_owned(), cause: source })?;
        let object = value.as_object().ok_or_else(|| {
            ModelError::ConfigInvalid(format!("{}: the config is not a JSON object", path.display()))
        })?;
        if let Some(missing) = REQUIRED_KEYS.iter().find(|key| !object.contains_key(**key)) {
            return Err(ModelError::ConfigInvalid(format!(
                "{} has no `{missing}` (diffusers writes every size of a WanTransformer3DModel: is this \
                 the transformer's config.json?)",
                path.display()
            )));
        }
        let config: Self = serde_json::from_value(value)
            .map_err(|source| ModelError::ConfigParse { path: path.to_owned(), cause: source })?;
        config.validate()?;
        Ok(config)
    }

    /// Hidden width `D = heads * head_dim`.
    #[must_use]
    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    /// Output channels (`out_channels`, or `in_channels` when unset).
    #[must_use]
    pub fn out_channels(&self) -> usize {
        self.out_channels.unwrap_or(self.in_channels)
    }

    /// Values per patch: `p_t * p_h * p_w`.
    #[must_use]
    pub fn patch_volume(&self) -> usize {
        self.patch_size.iter().product()
    }

    /// Checks what the forward pass relies on, so that a bad config fails at load time with a
    /// message rather than deep inside a matmul.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(ModelError::ConfigInvalid(what));
        if self.patch_size.contains(&0) {
            return invalid(format!("patch_size {:?} has a zero entry", self.patch_size));
        }
        let largest_patch = self.patch_size.iter().copied().max().unwrap_or(0);
        for (name, limit) in SIZE_LIMITS {
            let value = match name {
                "num_layers" => self.num_layers,
                "num_attention_heads" => self.num_attention_heads,
                "attention_head_dim" => self.attention_head_dim,
                "in_channels" => self.in_channels,
                "out_channels" => self.out_channels(),
                "text_dim" => self.text_dim,
                "freq_dim" => self.freq_dim,
                "ffn_dim" => self.ffn_dim,
                "rope_max_seq_len" => self.rope_max_seq_len,
                _ => largest_patch,
            };
            if value > limit {
                return invalid(format!(
                    "{name} is {value}, above the limit of {limit} (no Wan model is that large)"
                ));
            }
        }
        for (name, value) in [
            ("num_attention_heads", self.num_attention_heads),
            ("attention_head_dim", self.attention_head_dim),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels()),
            ("text_dim", self.text_dim),
            ("ffn_dim", self.ffn_dim),
            ("num_layers", self.num_layers),
            ("rope_max_seq_len", self.rope_max_seq_len),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be positive"));
            }
        }
        if self.freq_dim == 0 || !self.freq_dim.is_multiple_of(2) {
            return invalid(format!("freq_dim must be a positive even number, got {}", self.freq_dim));
        }
        if !self.attention_head_dim.is_multiple_of(2) {
            return invalid(format!(
                "attention_head_dim must be even for rotary embeddings, got {}",
                self.attention_head_dim
            ));
        }
        if self.attention_head_dim < 6 {
            return invalid(format!(
                "attention_head_dim {} leaves no room for 3-D rotary axes (needs at least 6)",
                self.attention_head_dim
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return invalid(format!("eps must be a positive number, got {}", self.eps));
        }
        if self.image_dim.is_some() || self.added_kv_proj_dim.is_some() {
            return invalid(
                "Wan2.1 image-to-video's CLIP image branch (image_dim / added_kv_proj_dim) is not \
                 supported; use a text-to-video or TI2V checkpoint"
                    .to_owned(),
            );
        }
        if let Some(kind) = &self.qk_norm
            && kind != "rms_norm_across_heads"
        {
            return invalid(format!("qk_norm `{kind}` is not supported (only rms_norm_across_heads)"));
        }
        // Parameter counts stay far below usize::MAX for any real model; check the largest
        // product anyway so an absurd config is an error, not an overflow.
        let inner = self.num_attention_heads.checked_mul(self.attention_head_dim);
        let widest = inner.and_then(|d| d.checked_mul(6)).and_then(|d| d.checked_mul(d.max(self.ffn_dim)));
        if widest.is_none() {
            return invalid("layer sizes overflow".to_owned());
        }
        Ok(())
    }

    /// Rotary split of the head dimension into (frame, row, column) parts:
    /// `h = w = 2 * (d / 6)`, `t = d - 2h`.
    #[must_use]
    pub fn rope_axes(&self) -> [usize; 3] {
        let d = self.attention_head_dim;
        let hw = 2 * (d / 6);
        [d - 2 * hw, hw, hw]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_diffusers_config_and_ignores_private_keys() {
        let json = r#"{"_class_name": "WanTransformer3DModel", "_diffusers_version": "0.35.0",
            "patch_size": [1, 2, 2], "num_attention_heads": 12, "attention_head_dim": 128,
            "in_channels": 16, "out_channels": 16, "text_dim": 4096, "freq_dim": 256,
            "ffn_dim": 8960, "num_layers": 30, "cross_attn_norm": true,
            "qk_norm": "rms_norm_across_heads", "eps": 1e-06, "image_dim": null,
            "added_kv_proj_dim": null, "rope_max_seq_len": 1024}"#;
        let config: WanConfig = serde_json::from_str(json).unwrap();
        config.validate().unwrap();
        assert_eq!(config.inner_dim(), 1536);
        assert_eq!(config.rope_axes(), [44, 42, 42]);
    }

    #[test]
    fn rope_axes_for_a_head_dim_that_is_not_a_multiple_of_six() {
        let config = WanConfig { attention_head_dim: 20, ..WanConfig::default() };
        assert_eq!(config.rope_axes(), [8, 6, 6]);
    }

    #[test]
    fn rejects_the_clip_image_branch_with_a_reason() {
        let config = WanConfig { image_dim: Some(1280), ..WanConfig::default() };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("image_dim"), "{message}");
    }

    #[test]
    fn sizes_beyond_any_wan_model_are_refused_before_anything_is_built() {
        for (config, name) in [
            (WanConfig { num_layers: 1_000_000_000, ..WanConfig::default() }, "num_layers"),
            (WanConfig { num_layers: usize::MAX, ..WanConfig::default() }, "num_layers"),
            (WanConfig { ffn_dim: 1 << 30, ..WanConfig::default() }, "ffn_dim"),
            (WanConfig { patch_size: [1, 2, 1000], ..WanConfig::default() }, "patch_size"),
        ] {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(name) && message.contains("above the limit"), "{message}");
        }
        WanConfig { num_layers: 512, ..WanConfig::default() }.validate().unwrap();
    }

    #[test]
    fn a_config_that_is_empty_lacks_a_size_or_is_endless_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{}").unwrap();
        let message = WanConfig::from_file(&path).unwrap_err().to_string();
        assert!(message.contains("has no `patch_size`"), "{message}");
        let mut full: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&WanConfig::default()).unwrap()).unwrap();
        full.as_object_mut().unwrap().remove("num_layers");
        std::fs::write(&path, full.to_string()).unwrap();
        let message = WanConfig::from_file(&path).unwrap_err().to_string();
        assert!(message.contains("has no `num_layers`"), "{message}");
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(WanConfig::from_file(&path).unwrap_err().to_string().contains("not a JSON object"));
        // Longer than any config: refused after reading the cap, not read to the end.
        std::fs::write(&path, vec![b' '; (MAX_CONFIG_BYTES + 10) as usize]).unwrap();
        let message = WanConfig::from_file(&path).unwrap_err().to_string();
        assert!(message.contains("larger than"), "{message}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_config_linked_to_an_endless_file_is_refused_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let message = WanConfig::from_file(&path).unwrap_err().to_string();
        assert!(message.contains("larger than") || message.contains("UTF-8"), "{message}");
    }

    #[test]
    fn rejects_odd_head_dims() {
        let config = WanConfig { attention_head_dim: 21, ..WanConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("attention_head_dim"));
    }
}
