//! The Wan VAE's decoder (diffusers' `WanDecoder3d` with `AutoencoderKLWan`'s
//! `post_quant_conv`): Wan2.1's (16 latent channels, plain up blocks) and Wan2.2's (48
//! channels, residual up blocks with a repeat-and-fold shortcut, patch size 2), decoding one
//! latent frame at a time through the causal cache: the first latent frame becomes one video
//! frame, every later one four (time up-sampled twice).

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::config::WanVaeConfig;
use super::layers::{
    AttentionBlock, CausalConv3d, ChannelRmsNorm, DupUp, FeatCache, ResidualBlock, Upsample, silu, unpatchify,
};

/// One up-sampling stage: residual blocks, then an up-sampler (none after the last stage), and
/// in Wan2.2 a shortcut around it all.
#[derive(Debug, Clone)]
struct UpBlock {
    resnets: Vec<ResidualBlock>,
    upsample: Option<Upsample>,
    shortcut: Option<DupUp>,
}

/// The decoder and the convolution before it.
#[derive(Debug, Clone)]
pub struct WanVaeDecoder {
    post_quant_conv: CausalConv3d,
    conv_in: CausalConv3d,
    mid: (ResidualBlock, AttentionBlock, ResidualBlock),
    up_blocks: Vec<UpBlock>,
    norm_out: ChannelRmsNorm,
    conv_out: CausalConv3d,
    /// Wan2.2's patch size (the decoder's channels hold `patch x patch` pixels each).
    patch: usize,
}

impl WanVaeDecoder {
    /// Loads `post_quant_conv` and `decoder.*` from `vb` (the VAE checkpoint's root).
    pub fn load(vb: &VarBuilder<'_>, config: &WanVaeConfig) -> candle_core::Result<Self> {
        let base = config.decoder_base();
        let mut dims = vec![base * config.dim_mult.last().copied().unwrap_or(1)];
        dims.extend(config.dim_mult.iter().rev().map(|mult| base * mult));
        let time_upsample: Vec<bool> = config.temperal_downsample.iter().rev().copied().collect();
        let decoder = vb.pp("decoder");
        let z = config.z_dim;
        let mid = decoder.pp("mid_block");
        let mut up_blocks = Vec::new();
        for (stage, pair) in dims.windows(2).enumerate() {
            // Wan2.1: after the first stage, the up-sampler before has halved the width (Wan2.2's
            // residual blocks keep it).
            let inputs = if stage > 0 && !config.is_residual { pair[0] / 2 } else { pair[0] };
            let outputs = pair[1];
            let block = decoder.pp(format!("up_blocks.{stage}"));
            let resnets = (0..=config.num_res_blocks)
                .map(|idx| {
                    let width = if idx == 0 { inputs } else { outputs };
                    ResidualBlock::load(&block.pp(format!("resnets.{idx}")), width, outputs)
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let up = stage + 1 < config.dim_mult.len();
            let (upsample, shortcut) = if config.is_residual {
                let upsample = up
                    .then(|| Upsample::load(&block.pp("upsampler"), (outputs, outputs), time_upsample[stage]))
                    .transpose()?;
                let factor_t = if time_upsample.get(stage).copied().unwrap_or(false) { 2 } else { 1 };
                (upsample, up.then_some(DupUp { outputs, factor_t }))
            } else {
                let upsample = up
                    .then(|| {
                        Upsample::load(
                            &block.pp("upsamplers.0"),
                            (outputs, outputs / 2),
                            time_upsample[stage],
                        )
                    })
                    .transpose()?;
                (upsample, None)
            };
            up_blocks.push(UpBlock { resnets, upsample, shortcut });
        }
        let last = dims.last().copied().unwrap_or(base);
        Ok(Self {
            post_quant_conv: CausalConv3d::load(&vb.pp("post_quant_conv"), (z, z), [1, 1, 1], [0, 0])?,
            conv_in: CausalConv3d::load(&decoder.pp("conv_in"), (z, dims[0]), [3, 3, 3], [1, 1])?,
            mid: (
                ResidualBlock::load(&mid.pp("resnets.0"), dims[0], dims[0])?,
                AttentionBlock::load(&mid.pp("attentions.0"), dims[0])?,
                ResidualBlock::load(&mid.pp("resnets.1"), dims[0], dims[0])?,
            ),
            up_blocks,
            norm_out: ChannelRmsNorm::load(&decoder.pp("norm_out"), last, true)?,
            conv_out: CausalConv3d::load(
                &decoder.pp("conv_out"),
                (last, config.out_channels),
                [3, 3, 3],
                [1, 1],
            )?,
            patch: config.patch_size.unwrap_or(1),
        })
    }

    /// One chunk (`[B, z, 1, h, w]`) through the decoder, with the cache of the chunks before.
    fn chunk(&self, x: &Tensor, cache: &mut FeatCache, first_chunk: bool) -> candle_core::Result<Tensor> {
        cache.start_chunk();
        let mut x = self.conv_in.forward_cached(x, cache)?;
        let (first, attention, second) = &self.mid;
        x = first.forward(&x, cache)?;
        x = attention.forward(&x)?;
        x = second.forward(&x, cache)?;
        for block in &self.up_blocks {
            let input = x.clone();
            for resnet in &block.resnets {
                x = resnet.forward(&x, cache)?;
            }
            if let Some(upsample) = &block.upsample {
                x = upsample.forward(&x, cache)?;
            }
            if let Some(shortcut) = &block.shortcut {
                x = (x + shortcut.forward(&input, first_chunk)?)?;
            }
        }
        let x = silu(&self.norm_out.forward(&x)?)?;
        self.conv_out.forward_cached(&x, cache)
    }

    /// Latents `z` `[B, z, F, h, w]` (already de-normalised) to the video `[B, 3, 1 + 4 (F - 1),
    /// 8h, 8w]` in `[-1, 1]`, one latent frame at a time.
    pub fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        self.decode_unless(z, &|| false)?
            .ok_or_else(|| candle_core::Error::Msg("a decode that cannot be cancelled was".to_owned()))
    }

    /// [`Self::decode`], giving up between two latent frames once `cancelled` says so (`None`).
    pub fn decode_unless(
        &self,
        z: &Tensor,
        cancelled: &dyn Fn() -> bool,
    ) -> candle_core::Result<Option<Tensor>> {
        let x = self.post_quant_conv.forward(z, None)?;
        let mut cache = FeatCache::default();
        let mut frames = Vec::new();
        for frame in 0..x.dim(2)? {
            if cancelled() {
                return Ok(None);
            }
            frames.push(self.chunk(&x.narrow(2, frame, 1)?, &mut cache, frame == 0)?);
        }
        let video = unpatchify(&Tensor::cat(&frames, 2)?, self.patch)?;
        Ok(Some(video.clamp(-1.0, 1.0)?))
    }
}
