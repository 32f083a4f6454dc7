//! The layers only the VAE's encoder has: the down-samplers (a stride-2 convolution in space,
//! and in `downsample3d` a stride-2 causal convolution in time through the causal cache),
//! Wan2.2's averaging shortcut around a down-sampling block, and the patch folding of its
//! input. Shapes are `[B, C, T, H, W]`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::layers::{CausalConv3d, FeatCache, Slot};

/// A down-sampler: each frame padded by one pixel on the right and bottom and convolved 3x3
/// with stride 2; in `downsample3d`, then a causal time convolution of stride 2 over the last
/// frame of the chunk before and this chunk (skipped on the first chunk, whose one frame stays
/// one frame).
#[derive(Debug, Clone)]
pub struct Downsample {
    /// `[C, C, 3, 3]` and `[C]`.
    conv: (Tensor, Tensor),
    time_conv: Option<CausalConv3d>,
}

impl Downsample {
    pub fn load(vb: &VarBuilder<'_>, channels: usize, in_time: bool) -> candle_core::Result<Self> {
        let conv = vb.pp("resample.1");
        let time_conv = in_time
            .then(|| {
                CausalConv3d::load(&vb.pp("time_conv"), (channels, channels), [3, 1, 1], [0, 0])
                    .map(|conv| conv.with_time_stride(2))
            })
            .transpose()?;
        Ok(Self {
            conv: (conv.get((channels, channels, 3, 3), "weight")?, conv.get(channels, "bias")?),
            time_conv,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        let (batch, channels, frames, height, width) = x.dims5()?;
        let images = x.permute((0, 2, 1, 3, 4))?.reshape((batch * frames, channels, height, width))?;
        let padded = images.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?;
        let (weight, bias) = &self.conv;
        let outputs = bias.dim(0)?;
        let out = padded.conv2d(weight, 0, 2, 1, 1)?.broadcast_add(&bias.reshape((1, outputs, 1, 1))?)?;
        let (_, _, out_height, out_width) = out.dims4()?;
        let x = out
            .reshape((batch, frames, outputs, out_height, out_width))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?;
        let Some(time_conv) = &self.time_conv else { return Ok(x) };
        let slot = cache.take();
        let previous = match slot {
            Slot::Frames(previous) => previous.clone(),
            Slot::Empty | Slot::Repeat => {
                *slot = Slot::Frames(x.clone());
                return Ok(x);
            }
        };
        let last = |t: &Tensor| -> candle_core::Result<Tensor> { t.narrow(2, t.dim(2)? - 1, 1) };
        let keep = last(&x)?;
        let out = time_conv.forward(&Tensor::cat(&[&last(&previous)?, &x], 2)?, None)?;
        *slot = Slot::Frames(keep);
        Ok(out)
    }
}

/// Wan2.2's shortcut around a down-sampling block (`AvgDown3D`): `factor_t x f_s x f_s`
/// neighbouring values (zeros in front where the frames do not divide) folded into channels,
/// and groups of those channels averaged down to `outputs`.
#[derive(Debug, Clone, Copy)]
pub struct AvgDown {
    pub outputs: usize,
    pub factor_t: usize,
    pub factor_s: usize,
}

impl AvgDown {
    /// `x` `[B, C, T, H, W]` to `[B, outputs, ceil(T / f_t), H / f_s, W / f_s]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (ft, fs) = (self.factor_t, self.factor_s);
        let pad = (ft - x.dim(2)? % ft) % ft;
        let x = if pad > 0 { x.pad_with_zeros(2, pad, 0)? } else { x.clone() };
        let (batch, channels, frames, height, width) = x.dims5()?;
        let (frames, height, width) = (frames / ft, height / fs, width / fs);
        let folded_channels = channels * ft * fs * fs;
        if self.outputs == 0 || folded_channels % self.outputs != 0 {
            return Err(candle_core::Error::Msg(format!(
                "an averaging shortcut from {folded_channels} folded channels to {}",
                self.outputs
            )));
        }
        x.reshape(vec![batch, channels, frames, ft, height, fs, width, fs])?
            .permute(vec![0, 1, 3, 5, 7, 2, 4, 6])?
            .reshape(vec![batch, self.outputs, folded_channels / self.outputs, frames, height, width])?
            .mean(2)
    }
}

/// `[B, C, T, H p, W p]` to `[B, C p p, T, H, W]`, as diffusers' `patchify` folds pixels into
/// channels (the inverse of [`super::layers::unpatchify`]).
pub fn patchify(x: &Tensor, patch: usize) -> candle_core::Result<Tensor> {
    if patch <= 1 {
        return Ok(x.clone());
    }
    let (batch, channels, frames, height, width) = x.dims5()?;
    if height % patch != 0 || width % patch != 0 {
        return Err(candle_core::Error::Msg(format!(
            "frames of {height} x {width} do not divide into patches of {patch}"
        )));
    }
    let (height, width) = (height / patch, width / patch);
    x.reshape(vec![batch, channels, frames, height, patch, width, patch])?
        .permute(vec![0, 1, 6, 4, 2, 3, 5])?
        .reshape((batch, channels * patch * patch, frames, height, width))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::vae::layers::unpatchify;

    #[test]
    fn patchify_undoes_unpatchify() {
        let x = Tensor::arange(0f32, 2.0 * 12.0 * 3.0 * 4.0 * 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 12, 3, 4, 6))
            .unwrap();
        let round_trip = patchify(&unpatchify(&x, 2).unwrap(), 2).unwrap();
        let error = (round_trip - &x).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(error == 0.0, "patchify(unpatchify(x)) differs from x by {error}");
    }

    #[test]
    fn avg_down_averages_each_neighbourhood() {
        // One channel of 1 frame 2 x 2 (padded in front to 2 frames), all to one output: the
        // mean of the 4 values and the 4 zero-padding values.
        let x = Tensor::new(&[1f32, 2.0, 3.0, 4.0], &Device::Cpu).unwrap().reshape((1, 1, 1, 2, 2)).unwrap();
        let out = AvgDown { outputs: 1, factor_t: 2, factor_s: 2 }.forward(&x).unwrap();
        assert_eq!(out.dims(), [1, 1, 1, 1, 1]);
        let value = out.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((value - 10.0 / 8.0).abs() < 1e-6, "{value}");
    }
}
