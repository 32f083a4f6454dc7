//! UMT5's encoder (transformers' `UMT5EncoderModel`), the text encoder of every Wan pipeline:
//! T5 with a relative position bias of its own in every layer (T5 shares the first layer's),
//! T5's RMS norm (no mean, no bias, in f32), unscaled dot-product attention, and a gated-GELU
//! feed-forward (`gelu_tanh(x W_0) * (x W_1)`). Module paths follow the checkpoint's keys
//! (`encoder.block.N.layer.0.SelfAttention.q`, ...), so a pipeline's `text_encoder/` loads by
//! name.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::config::Umt5Config;
use super::error::TextError;

/// T5's layer norm: `w * x / sqrt(mean(x^2) + eps)`, computed in f32.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(vb: &VarBuilder<'_>, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Self { weight: vb.get(size, "weight")?, eps })
    }

    /// `[B, L, D]` to `[B, L, D]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let variance = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

fn linear(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
    Ok(Linear::new(vb.get((outputs, inputs), "weight")?, None))
}

/// The bucket of the key at position `key` seen from the query at `query`, as T5 buckets for a
/// bidirectional encoder: half the buckets for keys after the query; in each half, exact buckets
/// for the nearest `buckets / 4` distances and logarithmic ones up to `max_distance`. Computed
/// in f32 as transformers computes it, so the buckets match at the boundaries.
#[must_use]
pub fn relative_bucket(query: usize, key: usize, num_buckets: usize, max_distance: usize) -> usize {
    let half = num_buckets / 2;
    let (base, distance) = if key > query { (half, key - query) } else { (0, query - key) };
    let max_exact = half / 2;
    if distance < max_exact {
        return base + distance;
    }
    let log_ratio = (distance as f32 / max_exact as f32).ln()
        / ((max_distance as f64 / max_exact as f64).ln() as f32)
        * (half - max_exact) as f32;
    base + (max_exact + log_ratio as usize).min(half - 1)
}

/// One encoder layer: self-attention with its relative position bias, then the feed-forward,
/// each behind an RMS norm and added back.
#[derive(Debug, Clone)]
struct Umt5Layer {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// `[num_buckets, heads]`.
    position_bias: Embedding,
    ffn_norm: RmsNorm,
    wi_0: Linear,
    wi_1: Linear,
    wo: Linear,
    heads: usize,
    head_dim: usize,
    num_buckets: usize,
    max_distance: usize,
}

impl Umt5Layer {
    fn load(vb: &VarBuilder<'_>, config: &Umt5Config) -> candle_core::Result<Self> {
        let (d, inner) = (config.d_model, config.inner_dim());
        let attn = vb.pp("layer.0");
        let sa = attn.pp("SelfAttention");
        let ffn = vb.pp("layer.1");
        let dense = ffn.pp("DenseReluDense");
        let buckets = config.relative_attention_num_buckets;
        Ok(Self {
            attn_norm: RmsNorm::load(&attn.pp("layer_norm"), d, config.layer_norm_epsilon)?,
            q: linear(&sa.pp("q"), d, inner)?,
            k: linear(&sa.pp("k"), d, inner)?,
            v: linear(&sa.pp("v"), d, inner)?,
            o: linear(&sa.pp("o"), inner, d)?,
            position_bias: Embedding::new(
                sa.pp("relative_attention_bias").get((buckets, config.num_heads), "weight")?,
                config.num_heads,
            ),
            ffn_norm: RmsNorm::load(&ffn.pp("layer_norm"), d, config.layer_norm_epsilon)?,
            wi_0: linear(&dense.pp("wi_0"), d, config.d_ff)?,
            wi_1: linear(&dense.pp("wi_1"), d, config.d_ff)?,
            wo: linear(&dense.pp("wo"), config.d_ff, d)?,
            heads: config.num_heads,
            head_dim: config.d_kv,
            num_buckets: buckets,
            max_distance: config.relative_attention_max_distance,
        })
    }

    /// The layer's relative position bias for `length` tokens, `[1, heads, L, L]`.
    fn bias(&self, length: usize, device: &Device) -> candle_core::Result<Tensor> {
        let buckets: Vec<u32> = (0..length)
            .flat_map(|query| {
                (0..length)
                    .map(move |key| relative_bucket(query, key, self.num_buckets, self.max_distance) as u32)
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (length, length), device)?;
        self.position_bias.forward(&buckets)?.permute((2, 0, 1))?.unsqueeze(0)
    }

    /// `x` `[B, L, D]` with `mask_bias` `[B, 1, 1, L]` (0 for tokens, the lowest value for
    /// padding) to `[B, L, D]`.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, length, _) = x.dims3()?;
        let normed = self.attn_norm.forward(x)?;
        let heads = |projection: &Linear| -> candle_core::Result<Tensor> {
            projection
                .forward(&normed)?
                .reshape((batch, length, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (heads(&self.q)?, heads(&self.k)?, heads(&self.v)?);
        // UMT5 does not scale the scores: the bias carries the positions.
        let scores = q.matmul(&k.t()?)?;
        let bias = self.bias(length, x.device())?.to_dtype(scores.dtype())?;
        let scores = scores.broadcast_add(&bias)?.broadcast_add(&mask_bias.to_dtype(scores.dtype())?)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let attended =
            weights.matmul(&v)?.transpose(1, 2)?.reshape((batch, length, self.heads * self.head_dim))?;
        let x = (x + self.o.forward(&attended)?)?;

        let normed = self.ffn_norm.forward(&x)?;
        let gated = (self.wi_0.forward(&normed)?.gelu()? * self.wi_1.forward(&normed)?)?;
        x + self.wo.forward(&gated)?
    }
}

/// The encoder: token embeddings, the layers, a final RMS norm.
#[derive(Debug, Clone)]
pub struct Umt5Encoder {
    embed: Embedding,
    layers: Vec<Umt5Layer>,
    final_norm: RmsNorm,
    config: Umt5Config,
}

impl Umt5Encoder {
    /// The encoder from `vb` at a checkpoint's root (`shared.weight`, or
    /// `encoder.embed_tokens.weight` where the embedding is stored under the encoder).
    pub fn new(vb: &VarBuilder<'_>, config: Umt5Config) -> Result<Self, TextError> {
        let embed_weight = if vb.contains_tensor("shared.weight") {
            vb.get((config.vocab_size, config.d_model), "shared.weight")?
        } else {
            vb.get((config.vocab_size, config.d_model), "encoder.embed_tokens.weight")?
        };
        let encoder = vb.pp("encoder");
        let layers = (0..config.num_layers)
            .map(|idx| Umt5Layer::load(&encoder.pp(format!("block.{idx}")), &config))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let final_norm =
            RmsNorm::load(&encoder.pp("final_layer_norm"), config.d_model, config.layer_norm_epsilon)?;
        Ok(Self { embed: Embedding::new(embed_weight, config.d_model), layers, final_norm, config })
    }

    #[must_use]
    pub fn config(&self) -> &Umt5Config {
        &self.config
    }

    /// The last hidden state `[B, L, D]` of token ids `[B, L]` (u32) under the attention mask
    /// `[B, L]` (1 for tokens, 0 for padding, any float or integer dtype): padded keys get no
    /// attention; padded positions are computed like the others (the pipeline zeroes them).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor, TextError> {
        let vocab = self.config.vocab_size;
        if let Some(&id) = ids.flatten_all()?.to_vec1::<u32>()?.iter().find(|&&id| id as usize >= vocab) {
            return Err(TextError::TokenOutOfVocabulary { id, vocab_size: vocab });
        }
        let mut x = self.embed.forward(ids)?;
        // (1 - mask) * lowest: 0 where there is a token, the lowest f32 where there is padding.
        let mask = mask.to_dtype(DType::F32)?;
        let mask_bias = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?.unsqueeze(1)?.unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask_bias)?;
        }
        Ok(self.final_norm.forward(&x)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_near_and_logarithmic_far_as_in_t5() {
        // 32 buckets, max distance 128: 16 per direction, 8 exact. Keys `relative` positions
        // after a query at 1000 (negative: before).
        let bucket =
            |relative: isize| relative_bucket(1000, 1000_usize.saturating_add_signed(relative), 32, 128);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(-3), 3);
        assert_eq!(bucket(3), 19);
        assert_eq!(bucket(-7), 7);
        // 8 + ln(n / 8) / ln(16) * 8, truncated, at most 15; the values transformers gives.
        for (relative, expected) in [
            (-8, 8),
            (-16, 10),
            (-32, 12),
            (-64, 14),
            (-127, 15),
            (-128, 15),
            (-500, 15),
            (16, 26),
            (100, 31),
            (500, 31),
        ] {
            assert_eq!(bucket(relative), expected, "{relative}");
        }
    }
}
