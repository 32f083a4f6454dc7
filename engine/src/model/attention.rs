//! `WanAttention`: multi-head attention with RMSNorm over the whole Q/K width, used both as
//! self-attention (with 3-D RoPE) and as cross-attention to the text tokens (without).
use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::error::Result;
use super::kernels::Kernels;
use super::rope::RopeAngles;

/// Upper bound on the bytes of one chunk of attention scores; longer sequences are processed
/// a block of queries at a time so memory stays flat.
const SCORE_CHUNK_BYTES: usize = 256 << 20;

/// One attention layer (`attn1` or `attn2` of a block).
#[derive(Debug, Clone)]
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    /// `[D]` RMSNorm weights applied to all of Q (resp. K) before the split into heads.
    norm_q: Tensor,
    norm_k: Tensor,
    heads: usize,
    eps: f32,
    kernels: Kernels,
}

/// Result of one attention call.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// `[B, N, D]`
    pub hidden: Tensor,
    /// `[B, heads, Q, N_kv]`, f32: attention probabilities of the probed queries, when asked.
    pub probs: Option<Tensor>,
}

impl Attention {
    pub fn new(dim: usize, heads: usize, eps: f64, kernels: Kernels, vb: VarBuilder<'_>) -> Result<Self> {
        Ok(Self {
            to_q: linear(dim, dim, vb.pp("to_q"))?,
            to_k: linear(dim, dim, vb.pp("to_k"))?,
            to_v: linear(dim, dim, vb.pp("to_v"))?,
            to_out: linear(dim, dim, vb.pp("to_out").pp("0"))?,
            norm_q: vb.pp("norm_q").get(dim, "weight")?,
            norm_k: vb.pp("norm_k").get(dim, "weight")?,
            heads,
            eps: eps as f32,
            kernels,
        })
    }

    /// Attends from `xs` `[B, N, D]` to `context` `[B, L, D]` (or to `xs` itself when `None`),
    /// rotating Q and K by `rope` when given. `probe_queries` (u32 token indices `[Q]`) asks for
    /// those queries' attention probabilities.
    pub fn forward(
        &self,
        xs: &Tensor,
        context: Option<&Tensor>,
        rope: Option<&RopeAngles>,
        probe_queries: Option<&Tensor>,
    ) -> Result<AttentionOutput> {
        let context = context.unwrap_or(xs);
        let q = self.kernels.rms_norm(&self.to_q.forward(xs)?, &self.norm_q, self.eps)?;
        let k = self.kernels.rms_norm(&self.to_k.forward(context)?, &self.norm_k, self.eps)?;
        let v = self.to_v.forward(context)?;
        let (mut q, mut k, v) = (self.split_heads(&q)?, self.split_heads(&k)?, self.split_heads(&v)?);
        if let Some(rope) = rope {
            q = rope.apply(&q)?;
            k = rope.apply(&k)?;
        }
        let head_dim = q.dim(D::Minus1)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let k_t = k.transpose(2, 3)?.contiguous()?;
        let attended = attend_in_chunks(&q, &k_t, &v, scale, self.kernels)?;
        let probs = match probe_queries {
            Some(indices) => {
                let q_probe = q.index_select(indices, 2)?.contiguous()?;
                let scores = (q_probe.to_dtype(DType::F32)?.matmul(&k_t.to_dtype(DType::F32)?)? * scale)?;
                Some(self.kernels.softmax_last_dim(&scores)?)
            }
            None => None,
        };
        let (batch, heads, tokens, _) = attended.dims4()?;
        let merged = attended.transpose(1, 2)?.reshape((batch, tokens, heads * head_dim))?;
        Ok(AttentionOutput { hidden: self.to_out.forward(&merged)?, probs })
    }

    /// `[B, N, D]` -> `[B, heads, N, D / heads]`, contiguous.
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, tokens, dim) = xs.dims3()?;
        Ok(xs.reshape((batch, tokens, self.heads, dim / self.heads))?.transpose(1, 2)?.contiguous()?)
    }
}

/// `softmax(q k^T * scale) v` for `q` `[B, H, N, d]`, `k_t` `[B, H, d, L]`, `v` `[B, H, L, d]`,
/// over blocks of queries so the score matrix never exceeds [`SCORE_CHUNK_BYTES`].
fn attend_in_chunks(q: &Tensor, k_t: &Tensor, v: &Tensor, scale: f64, kernels: Kernels) -> Result<Tensor> {
    let (batch, heads, queries, _) = q.dims4()?;
    let keys = k_t.dim(3)?;
    let bytes_per_query = batch * heads * keys * q.dtype().size_in_bytes();
    let chunk = (SCORE_CHUNK_BYTES / bytes_per_query.max(1)).clamp(1, queries.max(1));
    let mut outputs = Vec::with_capacity(queries.div_ceil(chunk));
    for start in (0..queries).step_by(chunk) {
        let len = chunk.min(queries - start);
        let q_chunk = q.narrow(2, start, len)?;
        let scores = (q_chunk.matmul(k_t)? * scale)?;
        let probs = kernels.softmax_last_dim(&scores)?;
        outputs.push(probs.matmul(v)?);
    }
    if outputs.len() == 1 {
        return Ok(outputs.remove(0));
    }
    Ok(Tensor::cat(&outputs, 2)?)
}
