//! Input embeddings: the Conv3d patchifier, the timestep/text condition embedder.
use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::config::WanConfig;
use super::error::{ModelError, Result};

/// The token grid of a latent video: `(F', H', W')` = frames, rows, columns after patching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrid {
    pub frames: usize,
    pub rows: usize,
    pub cols: usize,
}

impl TokenGrid {
    /// Number of tokens `F' * H' * W'`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.frames * self.rows * self.cols
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(frame, row, col)` of token `token_idx` (tokens run frame-major, then row, then column).
    #[must_use]
    pub fn position(&self, token_idx: usize) -> (usize, usize, usize) {
        let per_frame = self.rows * self.cols;
        (token_idx / per_frame, (token_idx % per_frame) / self.cols, token_idx % self.cols)
    }
}

/// `patch_embedding`: a Conv3d whose stride equals its kernel, computed as reshape + matmul.
#[derive(Debug, Clone)]
pub struct PatchEmbedding {
    /// `[D, C * p_t * p_h * p_w]`
    weight: Tensor,
    /// `[D]`
    bias: Tensor,
    patch_size: [usize; 3],
    in_channels: usize,
}

impl PatchEmbedding {
    pub fn new(config: &WanConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let d = config.inner_dim();
        let [pt, ph, pw] = config.patch_size;
        let weight = vb.get((d, config.in_channels, pt, ph, pw), "weight")?;
        let weight = weight.reshape((d, config.in_channels * config.patch_volume()))?;
        let bias = vb.get(d, "bias")?;
        Ok(Self { weight, bias, patch_size: config.patch_size, in_channels: config.in_channels })
    }

    /// The token grid for a latent of shape `[B, C, F, H, W]`, or an error naming the dimension
    /// that the patch size does not divide.
    pub fn grid(&self, latents: &Tensor) -> Result<TokenGrid> {
        let (_, channels, frames, height, width) = latents.dims5()?;
        if channels != self.in_channels {
            return Err(ModelError::Input(format!(
                "latents have {channels} channels, the model expects {}",
                self.in_channels
            )));
        }
        let [pt, ph, pw] = self.patch_size;
        for (name, size, patch) in [("frames", frames, pt), ("height", height, ph), ("width", width, pw)] {
            if size == 0 || size % patch != 0 {
                return Err(ModelError::Input(format!(
                    "latent {name} {size} is not a positive multiple of the patch size {patch}"
                )));
            }
        }
        Ok(TokenGrid { frames: frames / pt, rows: height / ph, cols: width / pw })
    }

    /// `[B, C, F, H, W]` -> tokens `[B, F'H'W', D]`, frame-major.
    pub fn forward(&self, latents: &Tensor) -> Result<Tensor> {
        let grid = self.grid(latents)?;
        let (batch, channels, ..) = latents.dims5()?;
        let [pt, ph, pw] = self.patch_size;
        // [B, C, F', pt, H', ph, W', pw] -> [B, F', H', W', C, pt, ph, pw]
        let patches = latents
            .reshape(&[batch, channels, grid.frames, pt, grid.rows, ph, grid.cols, pw][..])?
            .permute([0, 2, 4, 6, 1, 3, 5, 7])?
            .reshape((batch, grid.len(), channels * pt * ph * pw))?;
        let tokens = patches.broadcast_matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        Ok(tokens)
    }
}

/// Sinusoidal timestep features as diffusers' `Timesteps(flip_sin_to_cos=True, shift=0)`:
/// `[cos(t * f_i), sin(t * f_i)]` with `f_i = exp(-ln(10000) * i / (dim / 2))`.
///
/// `timesteps`: `[N]` (any float dtype) -> `[N, dim]` in f32.
pub fn timestep_features(timesteps: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let exponents: Vec<f32> = (0..half).map(|i| (-(10_000f32.ln()) * i as f32 / half as f32).exp()).collect();
    let freqs = Tensor::from_vec(exponents, (1, half), timesteps.device())?;
    let args = timesteps.to_dtype(DType::F32)?.unsqueeze(1)?.broadcast_mul(&freqs)?;
    Ok(Tensor::cat(&[args.cos()?, args.sin()?], D::Minus1)?)
}

/// `condition_embedder`: timestep -> (`temb`, the 6-way modulation), text -> text tokens.
#[derive(Debug, Clone)]
pub struct ConditionEmbedder {
    time_linear_1: Linear,
    time_linear_2: Linear,
    time_proj: Linear,
    text_linear_1: Linear,
    text_linear_2: Linear,
    freq_dim: usize,
}

/// The timestep conditioning of one forward pass.
#[derive(Debug, Clone)]
pub struct TimeConditioning {
    /// `[B, S, D]`, f32, where `S` is 1 (one timestep per sample) or the token count
    /// (per-token timesteps, TI2V). Modulates the output head.
    pub temb: Tensor,
    /// `[B, S, 6, D]`, f32: the blocks' shift/scale/gate vectors before adding their tables.
    pub modulation: Tensor,
}

impl ConditionEmbedder {
    pub fn new(config: &WanConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let d = config.inner_dim();
        // diffusers keeps the time embedder in f32 whatever the checkpoint dtype.
        let time_vb = vb.pp("time_embedder").set_dtype(DType::F32);
        let time_proj_vb = vb.pp("time_proj").set_dtype(DType::F32);
        let text_vb = vb.pp("text_embedder");
        Ok(Self {
            time_linear_1: linear(config.freq_dim, d, time_vb.pp("linear_1"))?,
            time_linear_2: linear(d, d, time_vb.pp("linear_2"))?,
            time_proj: linear(d, 6 * d, time_proj_vb)?,
            text_linear_1: linear(config.text_dim, d, text_vb.pp("linear_1"))?,
            text_linear_2: linear(d, d, text_vb.pp("linear_2"))?,
            freq_dim: config.freq_dim,
        })
    }

    /// `timesteps`: `[B, S]` (S = 1, or one timestep per token) -> [`TimeConditioning`].
    pub fn time(&self, timesteps: &Tensor) -> Result<TimeConditioning> {
        let (batch, per_sample) = timesteps.dims2()?;
        let features = timestep_features(&timesteps.flatten_all()?, self.freq_dim)?;
        let temb = self.time_linear_2.forward(&self.time_linear_1.forward(&features)?.silu()?)?;
        let modulation = self.time_proj.forward(&temb.silu()?)?;
        let d = temb.dim(1)?;
        Ok(TimeConditioning {
            temb: temb.reshape((batch, per_sample, d))?,
            modulation: modulation.reshape((batch, per_sample, 6, d))?,
        })
    }

    /// Text embeddings `[B, L, text_dim]` -> text tokens `[B, L, D]` (Linear, GELU-tanh, Linear).
    pub fn text(&self, text_embeds: &Tensor) -> Result<Tensor> {
        let hidden = self.text_linear_1.forward(text_embeds)?.gelu()?;
        Ok(self.text_linear_2.forward(&hidden)?)
    }
}

/// Non-affine layer norm over the last dimension, computed in f32 (diffusers' `FP32LayerNorm`),
/// returned in f32.
pub fn layer_norm_f32(xs: &Tensor, eps: f64) -> Result<Tensor> {
    let xs = xs.to_dtype(DType::F32)?;
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centred = xs.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(centred.broadcast_div(&(var + eps)?.sqrt()?)?)
}
