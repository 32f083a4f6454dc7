//! What a model needs in memory before anything is loaded: its weights at the compute dtype
//! (exact, from the config's tensor shapes), and an estimate of the activations of one forward
//! pass at a latent size. The blocks run one after another, so one block's working set is live
//! at a time, next to the residual stream; attention scores are computed in chunks of at most
//! 256 MiB.
use candle_core::DType;

use super::checkpoint::expected_tensors;
use super::config::WanConfig;
use super::error::{ModelError, Result};

/// The most score bytes one attention chunk holds (as `attention.rs` computes them).
const SCORE_CHUNK_BYTES: u64 = 256 << 20;

/// Memory for one forward pass of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub parameters: u64,
    /// The weights at the compute dtype (exact).
    pub weight_bytes: u64,
    /// Tokens of the latent: `F' * H' * W'`.
    pub tokens: u64,
    /// The activations of one forward pass (an estimate; see [`estimate_memory`]).
    pub activation_bytes: u64,
}

impl MemoryEstimate {
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes + self.activation_bytes
    }
}

/// Weights and activations of `config` computing in `dtype` on a latent `[C, F, H, W]`, with
/// per-token timesteps (Wan2.2 TI2V) when `per_token_timesteps`.
///
/// Activations, with `N` tokens, width `D`, FFN width `FF`, `b` bytes per element: the block's
/// working set `N (6 D + 2 FF) b` (normed input, Q, K, V, the rotated Q and K, the attention
/// output and the FFN's two hidden tensors), two f32 copies of the stream for the norms `8 N D`,
/// one chunk of attention scores and its softmax (at most 256 MiB each, f32), the time
/// modulation in f32
/// (`6 D` per sample, or per token with per-token timesteps), and the sampler's f32 latents
/// (`x_t`, `v`, `x0_hat`, noise).
pub fn estimate_memory(
    config: &WanConfig,
    dtype: DType,
    latent_shape: [usize; 4],
    per_token_timesteps: bool,
) -> Result<MemoryEstimate> {
    config.validate()?;
    let [channels, frames, height, width] = latent_shape;
    let [p_t, p_h, p_w] = config.patch_size;
    if latent_shape.contains(&0) || frames % p_t != 0 || height % p_h != 0 || width % p_w != 0 {
        return Err(ModelError::Input(format!(
            "the latent {latent_shape:?} is not a positive multiple of the patch size {:?}",
            config.patch_size
        )));
    }
    let as_u64 = |value: usize| value as u64;
    let parameters: u64 = expected_tensors(config)
        .values()
        .map(|shape| shape.iter().map(|&d| as_u64(d)).product::<u64>())
        .sum();
    let bytes = as_u64(dtype.size_in_bytes());
    let tokens = as_u64(frames / p_t) * as_u64(height / p_h) * as_u64(width / p_w);
    let (d, ff, heads) =
        (as_u64(config.inner_dim()), as_u64(config.ffn_dim), as_u64(config.num_attention_heads));
    let working_set = tokens * (6 * d + 2 * ff) * bytes;
    let norms = 8 * tokens * d;
    // The scores and their softmax are live together.
    let scores = 2 * (tokens * tokens * heads * 4).min(SCORE_CHUNK_BYTES);
    let modulation = 6 * d * 4 * if per_token_timesteps { tokens } else { 1 };
    let latents = 4 * 4 * as_u64(channels) * as_u64(frames) * as_u64(height) * as_u64(width);
    Ok(MemoryEstimate {
        parameters,
        weight_bytes: parameters * bytes,
        tokens,
        activation_bytes: working_set + norms + scores + modulation + latents,
    })
}

/// Memory the operating system says is available now (Linux: `MemAvailable`), if it says.
#[must_use]
pub fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` in GiB with one decimal, e.g. `"26.1 GiB"`.
#[must_use]
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// diffusers' `Wan2.1-T2V-1.3B` transformer config: width 1536 (12 heads x 128), 30 layers.
    fn wan21_1_3b() -> WanConfig {
        WanConfig { num_attention_heads: 12, ffn_dim: 8960, num_layers: 30, ..WanConfig::default() }
    }

    #[test]
    fn the_wan21_checkpoints_have_their_published_sizes() {
        // 480p, 81 frames: latent [16, 21, 60, 104], 32,760 tokens.
        let shape = [16, 21, 60, 104];
        let small = estimate_memory(&wan21_1_3b(), DType::BF16, shape, false).unwrap();
        assert_eq!(small.tokens, 32_760);
        // "1.3B" and "14B" as published.
        assert!((1_300_000_000..1_450_000_000).contains(&small.parameters), "{}", small.parameters);
        let large = estimate_memory(&WanConfig::default(), DType::BF16, shape, false).unwrap();
        assert!((14_000_000_000..14_500_000_000).contains(&large.parameters), "{}", large.parameters);
        assert_eq!(large.weight_bytes, 2 * large.parameters);
        assert!(large.activation_bytes > small.activation_bytes);
        // f32 weights are twice bf16's.
        let f32 = estimate_memory(&wan21_1_3b(), DType::F32, shape, false).unwrap();
        assert_eq!(f32.weight_bytes, 2 * small.weight_bytes);
    }

    #[test]
    fn per_token_timesteps_and_bad_latents() {
        let config = wan21_1_3b();
        let shape = [16, 5, 16, 16];
        let plain = estimate_memory(&config, DType::F32, shape, false).unwrap();
        let per_token = estimate_memory(&config, DType::F32, shape, true).unwrap();
        assert_eq!(per_token.activation_bytes - plain.activation_bytes, 6 * 1536 * 4 * (plain.tokens - 1));
        let err = estimate_memory(&config, DType::F32, [16, 5, 15, 16], false).unwrap_err();
        assert!(err.to_string().contains("patch size"), "{err}");
    }

    #[test]
    fn gib_has_one_decimal() {
        assert_eq!(gib(3 << 29), "1.5 GiB");
    }
}
