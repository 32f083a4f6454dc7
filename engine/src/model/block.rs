//! `WanTransformerBlock`: modulated, gated self-attention; cross-attention to the text on an
//! affine norm; a modulated, gated GELU-tanh feed-forward.
use candle_core::{DType, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::attention::Attention;
use super::config::WanConfig;
use super::embeddings::layer_norm_f32;
use super::error::Result;
use super::kernels::Kernels;
use super::rope::RopeAngles;

/// One transformer block (`blocks.N`).
#[derive(Debug, Clone)]
pub struct TransformerBlock {
    self_attn: Attention,
    cross_attn: Attention,
    /// Affine `norm2` `(weight, bias)`, each `[D]` in f32; `None` when `cross_attn_norm` is off.
    cross_norm: Option<(Tensor, Tensor)>,
    ffn_in: Linear,
    ffn_out: Linear,
    /// `[1, 1, 6, D]` f32: added to the timestep modulation.
    scale_shift_table: Tensor,
    eps: f64,
}

/// Inputs shared by every block of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct BlockContext<'a> {
    /// Text tokens `[B, L, D]`.
    pub text: &'a Tensor,
    /// Timestep modulation `[B, S, 6, D]` (S = 1 or the token count), f32.
    pub modulation: &'a Tensor,
    pub rope: &'a RopeAngles,
}

/// What a block produced.
#[derive(Debug, Clone)]
pub struct BlockOutput {
    /// `[B, N, D]`
    pub hidden: Tensor,
    /// `[B, heads, Q, N]` self-attention probabilities of the probed queries.
    pub self_attn_probs: Option<Tensor>,
    /// `[B, heads, Q, L]` cross-attention probabilities of the probed queries.
    pub cross_attn_probs: Option<Tensor>,
}

impl TransformerBlock {
    pub fn new(config: &WanConfig, kernels: Kernels, vb: VarBuilder<'_>) -> Result<Self> {
        let d = config.inner_dim();
        let heads = config.num_attention_heads;
        let cross_norm = if config.cross_attn_norm {
            let norm_vb = vb.pp("norm2").set_dtype(DType::F32);
            Some((norm_vb.get(d, "weight")?, norm_vb.get(d, "bias")?))
        } else {
            None
        };
        let scale_shift_table =
            vb.clone().set_dtype(DType::F32).get((1, 6, d), "scale_shift_table")?.unsqueeze(0)?;
        Ok(Self {
            self_attn: Attention::new(d, heads, config.eps, kernels, vb.pp("attn1"))?,
            cross_attn: Attention::new(d, heads, config.eps, kernels, vb.pp("attn2"))?,
            cross_norm,
            ffn_in: linear(d, config.ffn_dim, vb.pp("ffn").pp("net").pp("0").pp("proj"))?,
            ffn_out: linear(config.ffn_dim, d, vb.pp("ffn").pp("net").pp("2"))?,
            scale_shift_table,
            eps: config.eps,
        })
    }

    /// Runs the block on `hidden` `[B, N, D]`; `probe_queries` (u32 `[Q]`) asks for attention
    /// probabilities of those tokens.
    pub fn forward(
        &self,
        hidden: &Tensor,
        ctx: BlockContext<'_>,
        probe_queries: Option<&Tensor>,
    ) -> Result<BlockOutput> {
        let dtype = hidden.dtype();
        // [B, S, 6, D] -> six [B, S, D] vectors, broadcast over tokens when S = 1.
        let modulation = ctx.modulation.broadcast_add(&self.scale_shift_table)?;
        let part = |i: usize| modulation.narrow(2, i, 1).and_then(|t| t.squeeze(2));
        let (shift_sa, scale_sa, gate_sa) = (part(0)?, part(1)?, part(2)?);
        let (shift_ff, scale_ff, gate_ff) = (part(3)?, part(4)?, part(5)?);

        let normed = modulate(&layer_norm_f32(hidden, self.eps)?, &shift_sa, &scale_sa)?.to_dtype(dtype)?;
        let self_out = self.self_attn.forward(&normed, None, Some(ctx.rope), probe_queries)?;
        let hidden = residual_gated(hidden, &self_out.hidden, &gate_sa)?;

        let normed = match &self.cross_norm {
            Some((weight, bias)) => layer_norm_f32(&hidden, self.eps)?
                .broadcast_mul(weight)?
                .broadcast_add(bias)?
                .to_dtype(dtype)?,
            None => hidden.clone(),
        };
        let cross_out = self.cross_attn.forward(&normed, Some(ctx.text), None, probe_queries)?;
        let hidden = (hidden + cross_out.hidden)?;

        let normed = modulate(&layer_norm_f32(&hidden, self.eps)?, &shift_ff, &scale_ff)?.to_dtype(dtype)?;
        let ff = self.ffn_out.forward(&self.ffn_in.forward(&normed)?.gelu()?)?;
        let hidden = residual_gated(&hidden, &ff, &gate_ff)?;

        Ok(BlockOutput { hidden, self_attn_probs: self_out.probs, cross_attn_probs: cross_out.probs })
    }
}

/// `x * (1 + scale) + shift`, all f32, broadcasting `[B, S, D]` over tokens.
pub fn modulate(xs: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    Ok(xs.broadcast_mul(&(scale + 1.0)?)?.broadcast_add(shift)?)
}

/// `residual + update * gate` computed in f32 and returned in the residual's dtype.
fn residual_gated(residual: &Tensor, update: &Tensor, gate: &Tensor) -> Result<Tensor> {
    let update = update.to_dtype(DType::F32)?.broadcast_mul(gate)?;
    Ok((residual.to_dtype(DType::F32)? + update)?.to_dtype(residual.dtype())?)
}
