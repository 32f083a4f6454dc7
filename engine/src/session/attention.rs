//! Attention on demand: where one query token looks at one step, at every layer, found by
//! running the step's conditional forward pass again with attention kept for that token. The
//! run does not advance and nothing is stored unless asked for.
use candle_core::Tensor;

use super::error::{Result, SessionError};
use super::{ForwardInput, SamplingSession};
use crate::model::{ForwardProbe, TokenGrid};

/// Where one query token attends at one step, at every layer and head.
#[derive(Debug, Clone)]
pub struct AttentionMaps {
    /// The step whose forward pass was repeated.
    pub step_idx: usize,
    /// The query's flat index into the `[F', H', W']` token grid (frame-major).
    pub query_token: usize,
    pub grid: TokenGrid,
    /// `[layers, heads, N]` f32: self-attention probabilities over the video's `N` tokens.
    pub self_attn: Tensor,
    /// `[layers, heads, L]` f32: cross-attention probabilities over the `L` prompt tokens.
    pub cross_attn: Tensor,
}

impl SamplingSession {
    /// The attention of `query_token` (a flat index into the token grid) at the step this
    /// session is about to take, in the conditional pass, at every layer. The session is left
    /// as it was.
    pub fn attention_of(&self, query_token: usize) -> Result<AttentionMaps> {
        let step_idx = self.step_idx();
        if self.is_finished() {
            return Err(SessionError::Finished { steps: self.settings.steps });
        }
        let grid = self.grid;
        let query =
            u32::try_from(query_token).ok().filter(|_| query_token < grid.len()).ok_or_else(|| {
                SessionError::Setup(format!(
                    "query token {query_token} is outside the {} tokens of this run",
                    grid.len()
                ))
            })?;
        let timestep = self.solver.schedule().timesteps[step_idx];
        let timesteps = self.timesteps_for(timestep)?;
        let input = ForwardInput {
            latents: &self.latents,
            timesteps: &timesteps,
            text_embeds: &self.conditioning.prompt_embeds,
        };
        let probe = self.forward_probe(ForwardProbe {
            attention_layers: (0..self.model.num_layers()).collect(),
            query_tokens: vec![query],
            ..ForwardProbe::default()
        });
        let out = self.model_for(timestep).forward(&input, &probe)?;
        // Each trace holds `[1, heads, 1, N | L]`; one row per layer.
        let row = |probs: Option<&Tensor>, layer_idx: usize| -> Result<Tensor> {
            let probs = probs
                .ok_or_else(|| SessionError::Capture(format!("layer {layer_idx} returned no attention")))?;
            Ok(probs.squeeze(0)?.squeeze(1)?)
        };
        let mut self_rows = Vec::with_capacity(out.layers.len());
        let mut cross_rows = Vec::with_capacity(out.layers.len());
        for trace in &out.layers {
            self_rows.push(row(trace.self_attn_probs.as_ref(), trace.layer_idx)?);
            cross_rows.push(row(trace.cross_attn_probs.as_ref(), trace.layer_idx)?);
        }
        Ok(AttentionMaps {
            step_idx,
            query_token,
            grid,
            self_attn: Tensor::stack(&self_rows, 0)?,
            cross_attn: Tensor::stack(&cross_rows, 0)?,
        })
    }
}
