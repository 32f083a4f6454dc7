//! The Wan VAE decoder's layers, with the causal cache diffusers decodes with: the decoder runs
//! one latent frame at a time, and each causal convolution keeps the last two frames it saw
//! (its "slot" in [`FeatCache`], in call order), so that a chunk sees its past without the whole
//! video in memory. Shapes are `[B, C, T, H, W]`.

use candle_core::{D, DType, Module, Tensor};
use candle_nn::VarBuilder;

/// Frames a causal convolution keeps of its input for the next chunk.
const CACHE_FRAMES: usize = 2;

/// What one cache slot holds.
#[derive(Debug, Clone, Default)]
pub enum Slot {
    /// Not used yet (the first chunk).
    #[default]
    Empty,
    /// An up-sampler's time convolution skipped on the first chunk (the first latent frame is
    /// one video frame, not two).
    Repeat,
    /// The last frames of the slot's input, `[B, C, <= 2, H, W]`.
    Frames(Tensor),
}

/// The causal cache of one decode: a slot per causal convolution, taken in call order each chunk.
#[derive(Debug, Default)]
pub struct FeatCache {
    slots: Vec<Slot>,
    next: usize,
}

impl FeatCache {
    /// Starts a chunk: slots are taken from the first again.
    pub fn start_chunk(&mut self) {
        self.next = 0;
    }

    /// The next slot, made when first asked for.
    pub(super) fn take(&mut self) -> &mut Slot {
        if self.next == self.slots.len() {
            self.slots.push(Slot::Empty);
        }
        self.next += 1;
        &mut self.slots[self.next - 1]
    }
}

/// The frames a slot keeps after seeing `x`: its last two, or its last one after the slot's
/// previous last frame (zeros after a [`Slot::Repeat`]).
fn frames_to_keep(x: &Tensor, slot: &Slot) -> candle_core::Result<Tensor> {
    let frames = x.dim(2)?;
    let last = x.narrow(2, frames.saturating_sub(CACHE_FRAMES), frames.min(CACHE_FRAMES))?;
    if last.dim(2)? >= CACHE_FRAMES {
        return Ok(last);
    }
    match slot {
        Slot::Frames(previous) => {
            let previous_last = previous.narrow(2, previous.dim(2)? - 1, 1)?;
            Tensor::cat(&[&previous_last, &last], 2)
        }
        Slot::Repeat => Tensor::cat(&[&last.zeros_like()?, &last], 2),
        Slot::Empty => Ok(last),
    }
}

/// A 3-D convolution, causal in time (padded only in front, by twice the time padding) and
/// padded symmetrically in space, computed as one 2-D convolution per kernel frame.
#[derive(Debug, Clone)]
pub struct CausalConv3d {
    /// `[out, in, k_t, k_h, k_w]`.
    weight: Tensor,
    bias: Tensor,
    /// Frames of zeros in front: `2 * padding_t`.
    time_padding: usize,
    space_padding: usize,
    /// The stride along time (2 in the encoder's time down-samplers, otherwise 1).
    time_stride: usize,
}

impl CausalConv3d {
    pub fn load(
        vb: &VarBuilder<'_>,
        (inputs, outputs): (usize, usize),
        kernel: [usize; 3],
        padding: [usize; 2],
    ) -> candle_core::Result<Self> {
        let weight = vb.get((outputs, inputs, kernel[0], kernel[1], kernel[2]), "weight")?;
        Ok(Self {
            weight,
            bias: vb.get(outputs, "bias")?,
            time_padding: 2 * padding[0],
            space_padding: padding[1],
            time_stride: 1,
        })
    }

    /// The convolution taking every `stride`-th window along time.
    #[must_use]
    pub fn with_time_stride(self, stride: usize) -> Self {
        Self { time_stride: stride.max(1), ..self }
    }

    /// `x` `[B, C, T, H, W]`, after `past` (the cached frames of the chunks before, which take
    /// the place of as many zero frames).
    pub fn forward(&self, x: &Tensor, past: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        let mut zeros = self.time_padding;
        if let Some(past) = past
            && self.time_padding > 0
        {
            zeros -= past.dim(2)?.min(zeros);
            x = Tensor::cat(&[past, &x], 2)?;
        }
        if zeros > 0 {
            x = x.pad_with_zeros(2, zeros, 0)?;
        }
        let (batch, _, frames, height, width) = x.dims5()?;
        let (outputs, inputs, kernel_t, _, _) = self.weight.dims5()?;
        if frames < kernel_t {
            return Err(candle_core::Error::Msg(format!(
                "a causal convolution of {kernel_t} frames given {frames}"
            )));
        }
        let out_frames = (frames - kernel_t) / self.time_stride + 1;
        let mut sum: Option<Tensor> = None;
        for dt in 0..kernel_t {
            let window = if self.time_stride == 1 {
                x.narrow(2, dt, out_frames)?
            } else {
                let picked: Vec<u32> =
                    (0..out_frames).map(|frame| (dt + frame * self.time_stride) as u32).collect();
                x.index_select(&Tensor::new(picked, x.device())?, 2)?
            };
            let window =
                window.permute((0, 2, 1, 3, 4))?.reshape((batch * out_frames, inputs, height, width))?;
            let kernel = self.weight.narrow(2, dt, 1)?.squeeze(2)?.contiguous()?;
            let term = window.conv2d(&kernel, self.space_padding, 1, 1, 1)?;
            sum = Some(match sum {
                Some(sum) => (sum + term)?,
                None => term,
            });
        }
        let sum =
            sum.ok_or_else(|| candle_core::Error::Msg("a convolution kernel with no frames".to_owned()))?;
        let (_, _, out_height, out_width) = sum.dims4()?;
        sum.broadcast_add(&self.bias.reshape((1, outputs, 1, 1))?)?
            .reshape((batch, out_frames, outputs, out_height, out_width))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }

    /// [`Self::forward`] through a cache slot: its frames go in front, and it keeps this
    /// input's last frames.
    pub fn forward_cached(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        let slot = cache.take();
        let keep = frames_to_keep(x, slot)?;
        let past = match slot {
            Slot::Frames(past) => Some(past.clone()),
            Slot::Empty | Slot::Repeat => None,
        };
        let out = self.forward(x, past.as_ref())?;
        *slot = Slot::Frames(keep);
        Ok(out)
    }
}

/// The VAE's RMS norm over channels: `x / max(|x|_2, 1e-12) * sqrt(C) * gamma` (no bias).
#[derive(Debug, Clone)]
pub struct ChannelRmsNorm {
    /// `[C]`.
    gamma: Tensor,
    scale: f64,
}

impl ChannelRmsNorm {
    /// `channels` channels; the checkpoint stores gamma as `[C, 1, 1, 1]` (video) or `[C, 1, 1]`.
    pub fn load(vb: &VarBuilder<'_>, channels: usize, video: bool) -> candle_core::Result<Self> {
        let gamma =
            if video { vb.get((channels, 1, 1, 1), "gamma")? } else { vb.get((channels, 1, 1), "gamma")? };
        Ok(Self { gamma: gamma.flatten_all()?, scale: (channels as f64).sqrt() })
    }

    /// Normalises over dimension 1 of `x` (`[B, C, ...]`).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?;
        let norm = x32.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
        let mut shape = vec![1; x.rank()];
        shape[1] = self.gamma.dim(0)?;
        let gamma = self.gamma.to_dtype(DType::F32)?.reshape(shape)?;
        (x32.broadcast_div(&norm)? * self.scale)?.broadcast_mul(&gamma)?.to_dtype(dtype)
    }
}

/// Two normed, SiLU-activated causal convolutions and a shortcut (a 1x1x1 convolution where the
/// width changes).
#[derive(Debug, Clone)]
pub struct ResidualBlock {
    norm1: ChannelRmsNorm,
    conv1: CausalConv3d,
    norm2: ChannelRmsNorm,
    conv2: CausalConv3d,
    shortcut: Option<CausalConv3d>,
}

impl ResidualBlock {
    pub fn load(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        Ok(Self {
            norm1: ChannelRmsNorm::load(&vb.pp("norm1"), inputs, true)?,
            conv1: CausalConv3d::load(&vb.pp("conv1"), (inputs, outputs), [3, 3, 3], [1, 1])?,
            norm2: ChannelRmsNorm::load(&vb.pp("norm2"), outputs, true)?,
            conv2: CausalConv3d::load(&vb.pp("conv2"), (outputs, outputs), [3, 3, 3], [1, 1])?,
            shortcut: (inputs != outputs)
                .then(|| CausalConv3d::load(&vb.pp("conv_shortcut"), (inputs, outputs), [1, 1, 1], [0, 0]))
                .transpose()?,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        let shortcut = match &self.shortcut {
            Some(conv) => conv.forward(x, None)?,
            None => x.clone(),
        };
        let h = self.conv1.forward_cached(&candle_nn::ops::silu(&self.norm1.forward(x)?)?, cache)?;
        let h = self.conv2.forward_cached(&candle_nn::ops::silu(&self.norm2.forward(&h)?)?, cache)?;
        h + shortcut
    }
}

/// Single-head self-attention over the pixels of each frame (1x1 convolutions for q, k, v and
/// the output), added back.
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    norm: ChannelRmsNorm,
    /// `[3C, C, 1, 1]` and `[3C]`.
    to_qkv: (Tensor, Tensor),
    proj: (Tensor, Tensor),
}

impl AttentionBlock {
    pub fn load(vb: &VarBuilder<'_>, channels: usize) -> candle_core::Result<Self> {
        let conv = |name: &str, outputs: usize| -> candle_core::Result<(Tensor, Tensor)> {
            let vb = vb.pp(name);
            Ok((vb.get((outputs, channels, 1, 1), "weight")?, vb.get(outputs, "bias")?))
        };
        Ok(Self {
            norm: ChannelRmsNorm::load(&vb.pp("norm"), channels, false)?,
            to_qkv: conv("to_qkv", 3 * channels)?,
            proj: conv("proj", channels)?,
        })
    }

    fn pointwise((weight, bias): &(Tensor, Tensor), x: &Tensor) -> candle_core::Result<Tensor> {
        let outputs = bias.dim(0)?;
        x.conv2d(weight, 0, 1, 1, 1)?.broadcast_add(&bias.reshape((1, outputs, 1, 1))?)
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, channels, frames, height, width) = x.dims5()?;
        let images = x.permute((0, 2, 1, 3, 4))?.reshape((batch * frames, channels, height, width))?;
        let normed = self.norm.forward(&images)?;
        let qkv = Self::pointwise(&self.to_qkv, &normed)?
            .reshape((batch * frames, 3 * channels, height * width))?
            .transpose(1, 2)?; // [BT, HW, 3C]
        let q = qkv.narrow(D::Minus1, 0, channels)?.contiguous()?;
        let k = qkv.narrow(D::Minus1, channels, channels)?.contiguous()?;
        let v = qkv.narrow(D::Minus1, 2 * channels, channels)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? / (channels as f64).sqrt())?;
        let attended = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?; // [BT, HW, C]
        let attended = attended.transpose(1, 2)?.reshape((batch * frames, channels, height, width))?;
        let out = Self::pointwise(&self.proj, &attended)?
            .reshape((batch, frames, channels, height, width))?
            .permute((0, 2, 1, 3, 4))?;
        out + x
    }
}

/// An up-sampler: nearest 2x in space and a 3x3 convolution (to half the width in Wan2.1, to
/// the same width in Wan2.2's residual blocks), after (in `upsample3d`) a causal time
/// convolution that doubles the frames, skipped on the first chunk.
#[derive(Debug, Clone)]
pub struct Upsample {
    /// `[C / 2, C, 3, 3]` and `[C / 2]`.
    conv: (Tensor, Tensor),
    time_conv: Option<CausalConv3d>,
}

impl Upsample {
    pub fn load(
        vb: &VarBuilder<'_>,
        (channels, outputs): (usize, usize),
        in_time: bool,
    ) -> candle_core::Result<Self> {
        let conv = vb.pp("resample.1");
        let time_conv = in_time
            .then(|| CausalConv3d::load(&vb.pp("time_conv"), (channels, 2 * channels), [3, 1, 1], [1, 0]))
            .transpose()?;
        Ok(Self {
            conv: (conv.get((outputs, channels, 3, 3), "weight")?, conv.get(outputs, "bias")?),
            time_conv,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        if let Some(time_conv) = &self.time_conv {
            let slot = cache.take();
            if matches!(slot, Slot::Empty) {
                *slot = Slot::Repeat;
            } else {
                let keep = frames_to_keep(&x, slot)?;
                let past = match slot {
                    Slot::Frames(past) => Some(past.clone()),
                    Slot::Empty | Slot::Repeat => None,
                };
                let doubled = time_conv.forward(&x, past.as_ref())?;
                *slot = Slot::Frames(keep);
                // [B, 2C, T, H, W] -> [B, 2, C, T, H, W] -> frames interleaved: [B, C, 2T, H, W].
                let (batch, channels2, frames, height, width) = doubled.dims5()?;
                let channels = channels2 / 2;
                x = doubled
                    .reshape((batch, 2, channels, frames, height, width))?
                    .permute((0, 2, 3, 1, 4, 5))?
                    .reshape((batch, channels, frames * 2, height, width))?;
            }
        }
        let (batch, channels, frames, height, width) = x.dims5()?;
        let images = x.permute((0, 2, 1, 3, 4))?.reshape((batch * frames, channels, height, width))?;
        let upsampled = images.upsample_nearest2d(height * 2, width * 2)?;
        let (weight, bias) = &self.conv;
        let outputs = bias.dim(0)?;
        let out = upsampled.conv2d(weight, 1, 1, 1, 1)?.broadcast_add(&bias.reshape((1, outputs, 1, 1))?)?;
        out.reshape((batch, frames, outputs, height * 2, width * 2))?.permute((0, 2, 1, 3, 4))?.contiguous()
    }
}

/// Wan2.2's shortcut around an up-sampling block: the input's channels repeated and folded into
/// `factor_t` x 2 x 2 times as many frames and pixels (`DupUp3D`); on the first chunk the
/// first `factor_t - 1` frames are dropped, as the up-sampler makes one frame of the first.
#[derive(Debug, Clone, Copy)]
pub struct DupUp {
    pub outputs: usize,
    pub factor_t: usize,
}

impl DupUp {
    /// `x` `[B, C, T, H, W]` to `[B, outputs, T f_t, 2H, 2W]`.
    pub fn forward(&self, x: &Tensor, first_chunk: bool) -> candle_core::Result<Tensor> {
        let (batch, channels, frames, height, width) = x.dims5()?;
        let factor = self.factor_t * 4;
        let repeats = self.outputs * factor / channels.max(1);
        // repeat_interleave over channels: each channel `repeats` times in a row.
        let repeated = x
            .unsqueeze(2)?
            .broadcast_as((batch, channels, repeats, frames, height, width))?
            .reshape((batch, channels * repeats, frames, height, width))?;
        let folded = repeated
            .reshape(vec![batch, self.outputs, self.factor_t, 2, 2, frames, height, width])?
            .permute(vec![0, 1, 5, 2, 6, 3, 7, 4])?
            .reshape((batch, self.outputs, frames * self.factor_t, height * 2, width * 2))?;
        if first_chunk && self.factor_t > 1 {
            let kept = folded.dim(2)? - (self.factor_t - 1);
            return folded.narrow(2, self.factor_t - 1, kept);
        }
        Ok(folded)
    }
}

/// `[B, C p p, T, H, W]` to `[B, C, T, H p, W p]`: the channels' patch unfolded into pixels, as
/// diffusers' `unpatchify` does (channel `(c, i, j)` is pixel `(y p + j, x p + i)`).
pub fn unpatchify(x: &Tensor, patch: usize) -> candle_core::Result<Tensor> {
    if patch <= 1 {
        return Ok(x.clone());
    }
    let (batch, channels, frames, height, width) = x.dims5()?;
    let out = channels / (patch * patch);
    x.reshape(vec![batch, out, patch, patch, frames, height, width])?
        .permute(vec![0, 1, 4, 5, 3, 6, 2])?
        .reshape((batch, out, frames, height * patch, width * patch))
}

/// SiLU, for the decoder's head.
pub fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::Activation::Silu.forward(x)
}
