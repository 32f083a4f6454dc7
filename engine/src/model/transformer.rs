//! `WanTransformer3DModel`: patchify, condition, run the blocks, and decode tokens back to a
//! latent video through the modulated output head.
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::block::{BlockContext, TransformerBlock, modulate};
use super::checkpoint::{CheckpointFiles, open_weights};
use super::config::WanConfig;
use super::embeddings::{ConditionEmbedder, PatchEmbedding, TimeConditioning, TokenGrid, layer_norm_f32};
use super::error::{ModelError, Result};
use super::kernels::Kernels;
use super::rope::{Rope3d, RopeAngles};

/// The Wan video diffusion transformer.
#[derive(Debug, Clone)]
pub struct WanTransformer {
    config: WanConfig,
    patch_embedding: PatchEmbedding,
    condition: ConditionEmbedder,
    rope: Rope3d,
    blocks: Vec<TransformerBlock>,
    proj_out: Linear,
    /// `[1, 1, 2, D]` f32: output shift and scale before adding `temb`.
    scale_shift_table: Tensor,
    dtype: DType,
    device: Device,
}

/// The inputs of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct ForwardInput<'a> {
    /// Noisy latents `[B, C, F, H, W]`.
    pub latents: &'a Tensor,
    /// `[B]` (one timestep per sample) or `[B, N]` (one per token, Wan2.2 TI2V), in the 0..1000
    /// scale.
    pub timesteps: &'a Tensor,
    /// Prompt embeddings `[B, L, text_dim]`.
    pub text_embeds: &'a Tensor,
}

/// What to keep from inside the network during a forward pass, and which blocks to knock out;
/// the default keeps nothing, changes nothing and costs nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardProbe {
    /// Layers whose block output `[B, N, D]` is kept.
    pub hidden_layers: Vec<usize>,
    /// Layers whose attention probabilities are kept (self and cross), for `query_tokens`.
    pub attention_layers: Vec<usize>,
    /// Token indices (into the frame-major sequence) whose attention rows are kept.
    pub query_tokens: Vec<u32>,
    /// Blocks skipped: their output is their input, so they add nothing to the residual stream
    /// (an ablation). A skipped block in `attention_layers` still reports the attention it
    /// would have had.
    pub skip_layers: Vec<usize>,
}

/// What one layer yielded under a [`ForwardProbe`].
#[derive(Debug, Clone)]
pub struct LayerTrace {
    pub layer_idx: usize,
    /// `[B, N, D]` block output, when the layer was in `hidden_layers`.
    pub hidden: Option<Tensor>,
    /// `[B, heads, Q, N]`, f32.
    pub self_attn_probs: Option<Tensor>,
    /// `[B, heads, Q, L]`, f32.
    pub cross_attn_probs: Option<Tensor>,
}

/// The result of a forward pass.
#[derive(Debug, Clone)]
pub struct ForwardOutput {
    /// Predicted flow velocity `[B, C_out, F, H, W]`, f32.
    pub velocity: Tensor,
    pub grid: TokenGrid,
    /// `[B, S, D]` f32 timestep embedding; pass it to [`WanTransformer::head`] to decode
    /// intermediate tokens the way the last layer's are.
    pub temb: Tensor,
    /// One entry per probed layer, in layer order.
    pub layers: Vec<LayerTrace>,
}

impl WanTransformer {
    /// Loads a diffusers transformer directory (`config.json` + safetensors, single or sharded),
    /// checking every tensor's name and shape against the config first.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let files = CheckpointFiles::locate(dir)?;
        let config = WanConfig::from_file(&files.config)?;
        let vb = open_weights(&files, &config, dtype, device)?;
        Self::new(config, vb)
    }

    /// Builds the model from `vb`, whose paths mirror diffusers' keys, with the fused
    /// (forward-only) kernels.
    pub fn new(config: WanConfig, vb: VarBuilder<'_>) -> Result<Self> {
        Self::with_kernels(config, vb, Kernels::Fused)
    }

    /// Builds the model from `vb` with the chosen attention kernels: [`Kernels::Differentiable`]
    /// for training (a `vb` over a `VarMap` then makes every weight a trainable `Var`).
    pub fn with_kernels(config: WanConfig, vb: VarBuilder<'_>, kernels: Kernels) -> Result<Self> {
        config.validate()?;
        let d = config.inner_dim();
        let blocks = (0..config.num_layers)
            .map(|layer_idx| TransformerBlock::new(&config, kernels, vb.pp("blocks").pp(layer_idx)))
            .collect::<Result<Vec<_>>>()?;
        let proj_out = linear(d, config.out_channels() * config.patch_volume(), vb.pp("proj_out"))?;
        let scale_shift_table =
            vb.clone().set_dtype(DType::F32).get((1, 2, d), "scale_shift_table")?.unsqueeze(0)?;
        Ok(Self {
            patch_embedding: PatchEmbedding::new(&config, vb.pp("patch_embedding"))?,
            condition: ConditionEmbedder::new(&config, vb.pp("condition_embedder"))?,
            rope: Rope3d::new(&config),
            blocks,
            proj_out,
            scale_shift_table,
            dtype: vb.dtype(),
            device: vb.device().clone(),
            config,
        })
    }

    #[must_use]
    pub fn config(&self) -> &WanConfig {
        &self.config
    }

    #[must_use]
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    #[must_use]
    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// The token grid of latents `[B, C, F, H, W]`.
    pub fn grid(&self, latents: &Tensor) -> Result<TokenGrid> {
        self.patch_embedding.grid(latents)
    }

    /// Patchified tokens `[B, N, D]` of latents `[B, C, F, H, W]`.
    pub fn embed_patches(&self, latents: &Tensor) -> Result<Tensor> {
        self.patch_embedding.forward(&latents.to_dtype(self.dtype)?)
    }

    /// Timestep conditioning for `[B]` or `[B, N]` timesteps.
    pub fn embed_time(&self, timesteps: &Tensor) -> Result<TimeConditioning> {
        let per_token = match timesteps.rank() {
            1 => timesteps.unsqueeze(1)?,
            2 => timesteps.clone(),
            rank => {
                return Err(ModelError::Input(format!("timesteps must be [B] or [B, N], got rank {rank}")));
            }
        };
        self.condition.time(&per_token)
    }

    /// Text tokens `[B, L, D]` from prompt embeddings `[B, L, text_dim]`.
    pub fn embed_text(&self, text_embeds: &Tensor) -> Result<Tensor> {
        let (_, _, width) = text_embeds.dims3()?;
        if width != self.config.text_dim {
            return Err(ModelError::Input(format!(
                "prompt embeddings are {width} wide, the model's text_dim is {}",
                self.config.text_dim
            )));
        }
        self.condition.text(&text_embeds.to_dtype(self.dtype)?)
    }

    /// RoPE angles for `grid`.
    pub fn rope_angles(&self, grid: TokenGrid) -> Result<RopeAngles> {
        self.rope.angles(grid, &self.device)
    }

    /// Runs the whole network, keeping what `probe` asks for.
    pub fn forward(&self, input: &ForwardInput<'_>, probe: &ForwardProbe) -> Result<ForwardOutput> {
        let grid = self.grid(input.latents)?;
        let batch = input.latents.dim(0)?;
        Self::check_timesteps(input.timesteps, batch, grid)?;
        if let Some(&bad) = probe.query_tokens.iter().find(|&&t| t as usize >= grid.len()) {
            return Err(ModelError::Input(format!(
                "probe query token {bad} is outside the {} tokens",
                grid.len()
            )));
        }
        let rope = self.rope_angles(grid)?;
        let time = self.embed_time(input.timesteps)?;
        let text = self.embed_text(input.text_embeds)?;
        let queries = if probe.query_tokens.is_empty() {
            None
        } else {
            Some(Tensor::new(probe.query_tokens.as_slice(), &self.device)?)
        };
        let ctx = BlockContext { text: &text, modulation: &time.modulation, rope: &rope };

        let mut hidden = self.embed_patches(input.latents)?;
        let mut layers = Vec::new();
        for (layer_idx, block) in self.blocks.iter().enumerate() {
            let keep_attention = probe.attention_layers.contains(&layer_idx);
            let probe_queries = if keep_attention { queries.as_ref() } else { None };
            let (self_attn_probs, cross_attn_probs) = if probe.skip_layers.contains(&layer_idx) {
                match probe_queries {
                    Some(_) => {
                        let out = block.forward(&hidden, ctx, probe_queries)?;
                        (out.self_attn_probs, out.cross_attn_probs)
                    }
                    None => (None, None),
                }
            } else {
                let out = block.forward(&hidden, ctx, probe_queries)?;
                hidden = out.hidden;
                (out.self_attn_probs, out.cross_attn_probs)
            };
            let keep_hidden = probe.hidden_layers.contains(&layer_idx);
            if keep_hidden || keep_attention {
                layers.push(LayerTrace {
                    layer_idx,
                    hidden: keep_hidden.then(|| hidden.clone()),
                    self_attn_probs,
                    cross_attn_probs,
                });
            }
        }
        let velocity = self.head(&hidden, &time.temb, grid)?;
        Ok(ForwardOutput { velocity, grid, temb: time.temb, layers })
    }

    /// The output head: modulated non-affine norm, `proj_out`, unpatchify.
    /// `hidden` `[B, N, D]`, `temb` `[B, S, D]` -> `[B, C_out, F, H, W]` in f32.
    ///
    /// Applied to an intermediate block's tokens it gives the "logit lens" picture of that layer.
    pub fn head(&self, hidden: &Tensor, temb: &Tensor, grid: TokenGrid) -> Result<Tensor> {
        let table = self.scale_shift_table.broadcast_add(&temb.unsqueeze(2)?)?;
        let shift = table.narrow(2, 0, 1)?.squeeze(2)?;
        let scale = table.narrow(2, 1, 1)?.squeeze(2)?;
        let normed =
            modulate(&layer_norm_f32(hidden, self.config.eps)?, &shift, &scale)?.to_dtype(self.dtype)?;
        let patches = self.proj_out.forward(&normed)?.to_dtype(DType::F32)?;
        self.unpatchify(&patches, grid)
    }

    /// `[B, N, p_t p_h p_w C]` -> `[B, C, F, H, W]`.
    fn unpatchify(&self, patches: &Tensor, grid: TokenGrid) -> Result<Tensor> {
        let batch = patches.dim(0)?;
        let [pt, ph, pw] = self.config.patch_size;
        let channels = self.config.out_channels();
        let shape = [batch, grid.frames, grid.rows, grid.cols, pt, ph, pw, channels];
        // -> [B, C, F', pt, H', ph, W', pw]
        let video = patches.reshape(&shape[..])?.permute([0, 7, 1, 4, 2, 5, 3, 6])?;
        Ok(video.reshape((batch, channels, grid.frames * pt, grid.rows * ph, grid.cols * pw))?)
    }

    fn check_timesteps(timesteps: &Tensor, batch: usize, grid: TokenGrid) -> Result<()> {
        let dims = timesteps.dims();
        let ok = match dims {
            [b] => *b == batch,
            [b, n] => *b == batch && (*n == 1 || *n == grid.len()),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ModelError::Input(format!(
                "timesteps have shape {dims:?}; expected [{batch}] or [{batch}, {}] for this latent",
                grid.len()
            )))
        }
    }

    /// Number of parameters the config implies.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        super::checkpoint::expected_tensors(&self.config)
            .values()
            .map(|shape| shape.iter().product::<usize>())
            .sum()
    }
}
