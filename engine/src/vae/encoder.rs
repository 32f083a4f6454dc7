//! The Wan VAE's encoder (diffusers' `WanEncoder3d` with `AutoencoderKLWan`'s `quant_conv`):
//! Wan2.1's (plain down blocks) and Wan2.2's (residual down blocks with an averaging shortcut,
//! patch size 2), encoding the first frame alone and then four frames at a time through the
//! causal cache, as diffusers encodes; the first frame becomes one latent frame, every later
//! four one.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::config::WanVaeConfig;
use super::down_layers::{AvgDown, Downsample, patchify};
use super::layers::{AttentionBlock, CausalConv3d, ChannelRmsNorm, FeatCache, ResidualBlock, silu};

/// One stage of the encoder's down path.
#[derive(Debug, Clone)]
enum DownLayer {
    /// Wan2.1: a residual block or a down-sampler, in the flat order of `down_blocks.{n}`.
    Residual(ResidualBlock),
    Downsample(Downsample),
    /// Wan2.2: residual blocks and a down-sampler, with the averaging shortcut around them.
    ResidualDown {
        resnets: Vec<ResidualBlock>,
        downsample: Option<Downsample>,
        shortcut: AvgDown,
    },
}

impl DownLayer {
    fn forward(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        match self {
            Self::Residual(block) => block.forward(x, cache),
            Self::Downsample(downsample) => downsample.forward(x, cache),
            Self::ResidualDown { resnets, downsample, shortcut } => {
                let mut h = x.clone();
                for resnet in resnets {
                    h = resnet.forward(&h, cache)?;
                }
                if let Some(downsample) = downsample {
                    h = downsample.forward(&h, cache)?;
                }
                h + shortcut.forward(x)?
            }
        }
    }
}

/// The encoder and the convolution after it.
#[derive(Debug, Clone)]
pub struct WanVaeEncoder {
    conv_in: CausalConv3d,
    down: Vec<DownLayer>,
    mid: (ResidualBlock, AttentionBlock, ResidualBlock),
    norm_out: ChannelRmsNorm,
    conv_out: CausalConv3d,
    quant_conv: CausalConv3d,
    /// Latent channels (`quant_conv` gives twice as many: the mean, then the log-variance).
    z_dim: usize,
    patch: usize,
}

impl WanVaeEncoder {
    /// Loads `encoder.*` and `quant_conv` from `vb` (the VAE checkpoint's root).
    pub fn load(vb: &VarBuilder<'_>, config: &WanVaeConfig) -> candle_core::Result<Self> {
        let base = config.base_dim;
        let mut dims = vec![base];
        dims.extend(config.dim_mult.iter().map(|mult| base * mult));
        let encoder = vb.pp("encoder");
        let stages = config.dim_mult.len();
        let mut down = Vec::new();
        for (stage, pair) in dims.windows(2).enumerate() {
            let (inputs, outputs) = (pair[0], pair[1]);
            let last = stage + 1 == stages;
            let in_time = !last && config.temperal_downsample.get(stage).copied().unwrap_or(false);
            if config.is_residual {
                let block = encoder.pp(format!("down_blocks.{stage}"));
                let resnets = (0..config.num_res_blocks)
                    .map(|idx| {
                        let width = if idx == 0 { inputs } else { outputs };
                        ResidualBlock::load(&block.pp(format!("resnets.{idx}")), width, outputs)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let downsample = (!last)
                    .then(|| Downsample::load(&block.pp("downsampler"), outputs, in_time))
                    .transpose()?;
                let shortcut = AvgDown {
                    outputs,
                    factor_t: if in_time { 2 } else { 1 },
                    factor_s: if last { 1 } else { 2 },
                };
                down.push(DownLayer::ResidualDown { resnets, downsample, shortcut });
            } else {
                for idx in 0..config.num_res_blocks {
                    let width = if idx == 0 { inputs } else { outputs };
                    let block = encoder.pp(format!("down_blocks.{}", down.len()));
                    down.push(DownLayer::Residual(ResidualBlock::load(&block, width, outputs)?));
                }
                if !last {
                    let block = encoder.pp(format!("down_blocks.{}", down.len()));
                    down.push(DownLayer::Downsample(Downsample::load(&block, outputs, in_time)?));
                }
            }
        }
        let width = dims.last().copied().unwrap_or(base);
        let mid = encoder.pp("mid_block");
        let z2 = 2 * config.z_dim;
        Ok(Self {
            conv_in: CausalConv3d::load(
                &encoder.pp("conv_in"),
                (config.in_channels, base),
                [3, 3, 3],
                [1, 1],
            )?,
            down,
            mid: (
                ResidualBlock::load(&mid.pp("resnets.0"), width, width)?,
                AttentionBlock::load(&mid.pp("attentions.0"), width)?,
                ResidualBlock::load(&mid.pp("resnets.1"), width, width)?,
            ),
            norm_out: ChannelRmsNorm::load(&encoder.pp("norm_out"), width, true)?,
            conv_out: CausalConv3d::load(&encoder.pp("conv_out"), (width, z2), [3, 3, 3], [1, 1])?,
            quant_conv: CausalConv3d::load(&vb.pp("quant_conv"), (z2, z2), [1, 1, 1], [0, 0])?,
            z_dim: config.z_dim,
            patch: config.patch_size.unwrap_or(1),
        })
    }

    /// One chunk (`[B, C, 1 or 4, H, W]`, patch-folded) through the encoder, with the cache of
    /// the chunks before.
    fn chunk(&self, x: &Tensor, cache: &mut FeatCache) -> candle_core::Result<Tensor> {
        cache.start_chunk();
        let mut x = self.conv_in.forward_cached(x, cache)?;
        for layer in &self.down {
            x = layer.forward(&x, cache)?;
        }
        let (first, attention, second) = &self.mid;
        x = first.forward(&x, cache)?;
        x = attention.forward(&x)?;
        x = second.forward(&x, cache)?;
        let x = silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward_cached(&x, cache)
    }

    /// A video `[B, 3, 1 + 4k, H, W]` in `[-1, 1]` to the mean of its latent distribution
    /// `[B, z, 1 + k, H / 8, W / 8]` (Wan2.2: `/ 16`), not yet normalised: what diffusers'
    /// `retrieve_latents(vae.encode(video), sample_mode="argmax")` gives.
    pub fn encode(&self, video: &Tensor) -> candle_core::Result<Tensor> {
        let frames = video.dim(2)?;
        if frames % 4 != 1 {
            return Err(candle_core::Error::Msg(format!(
                "a video of {frames} frames: the VAE encodes 1 + 4k frames (the first alone, then four at a time)"
            )));
        }
        let x = patchify(video, self.patch)?;
        let mut cache = FeatCache::default();
        let mut latents = vec![self.chunk(&x.narrow(2, 0, 1)?, &mut cache)?];
        for start in (1..frames).step_by(4) {
            latents.push(self.chunk(&x.narrow(2, start, 4)?, &mut cache)?);
        }
        let moments = self.quant_conv.forward(&Tensor::cat(&latents, 2)?, None)?;
        moments.narrow(1, 0, self.z_dim)
    }
}
