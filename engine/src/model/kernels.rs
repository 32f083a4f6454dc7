//! The two attention kernels that have a fused candle-nn implementation without a backward pass
//! (RMSNorm, last-dimension softmax), with a differentiable twin for training.
use candle_core::{D, Tensor};

use super::error::Result;

/// Which implementation of RMSNorm and softmax the attention layers run.
///
/// Inference uses candle-nn's fused kernels; training needs gradients, which those kernels do
/// not provide, so it builds the same functions from differentiable primitives (the results
/// agree to float rounding, about 1e-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// candle-nn's fused kernels: fast, forward only.
    #[default]
    Fused,
    /// Built from primitive ops, so `Tensor::backward` reaches every weight.
    Differentiable,
}

impl Kernels {
    /// RMSNorm of `xs` `[..., D]` with weight `alpha` `[D]`.
    pub fn rms_norm(self, xs: &Tensor, alpha: &Tensor, eps: f32) -> Result<Tensor> {
        Ok(match self {
            Self::Fused => candle_nn::ops::rms_norm(xs, alpha, eps)?,
            Self::Differentiable => candle_nn::ops::rms_norm_slow(xs, alpha, eps)?,
        })
    }

    /// Softmax over the last dimension of `xs`.
    pub fn softmax_last_dim(self, xs: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Fused => candle_nn::ops::softmax_last_dim(xs)?,
            Self::Differentiable => candle_nn::ops::softmax(xs, D::Minus1)?,
        })
    }
}
