//! Attention a file stores: the `self_attn` / `cross_attn` captures of chosen query tokens
//! (written by `record --capture` or the Python exporter), read as the inspector's answer, so
//! that attention in a recorded or exported run shows without a live run.

use anyhow::{Context as _, Result, bail, ensure};
use candle_core::Tensor;
use stepscope_engine::model::TokenGrid;
use stepscope_engine::session::AttentionMaps;
use stepscope_engine::trajectory::{CaptureKind, TensorName};

use super::attention_view::AttentionQuery;
use super::document::Document;

/// Whether `document` stores self-attention captures to inspect.
#[must_use]
pub fn has_stored_attention(document: &Document) -> bool {
    let captures = &document.manifest().captures;
    captures.kinds.contains(&CaptureKind::SelfAttn) && !captures.query_tokens.is_empty()
}

/// The stored attention of `query`: per captured layer (in the manifest's order, whose model
/// layer indices come with it), self-attention `[layers, heads, N]` over the token grid and
/// cross-attention `[layers, heads, L]` over the prompt (`L = 0` when it was not captured).
pub fn stored_attention(document: &Document, query: AttentionQuery) -> Result<(AttentionMaps, Vec<usize>)> {
    let manifest = document.manifest();
    let captures = &manifest.captures;
    let Some(slot) = captures.query_tokens.iter().position(|&token| token == query.token) else {
        bail!(
            "token #{} is not among the query tokens this file stores attention for ({}); click one of them \
             or pick it above",
            query.token,
            list(&captures.query_tokens)
        );
    };
    let Some(owner) = manifest.capture_owner(query.seed_idx, query.step_idx) else {
        bail!(
            "seed {} has no captures at step {} (steps with captures: {})",
            query.seed_idx,
            query.step_idx,
            list(
                &manifest
                    .seeds
                    .get(query.seed_idx)
                    .map(|seed| seed.capture_steps.clone())
                    .unwrap_or_default()
            )
        );
    };
    let [_, frames, height, width] = manifest.latent_shape;
    let [p_t, p_h, p_w] = manifest.patch_size.map(|p| p.max(1));
    let grid = TokenGrid { frames: frames / p_t, rows: height / p_h, cols: width / p_w };
    let row_of = |layer_idx: usize, kind: CaptureKind| -> Result<Tensor> {
        let name = TensorName::capture(owner, query.step_idx, layer_idx, kind);
        let tensor = document.tensor(&name)?;
        ensure!(tensor.rank() == 3, "{name} has shape {:?}, not [heads, Q, N]", tensor.dims());
        Ok(tensor.narrow(1, slot, 1)?.squeeze(1)?.to_dtype(candle_core::DType::F32)?)
    };
    let self_rows = captures
        .layers
        .iter()
        .map(|&layer_idx| row_of(layer_idx, CaptureKind::SelfAttn))
        .collect::<Result<Vec<_>>>()?;
    let self_attn = Tensor::stack(&self_rows, 0).context("stacking the layers' self-attention")?;
    let [layers, heads, tokens] = self_attn.dims3().map(|(l, h, n)| [l, h, n])?;
    ensure!(tokens == grid.len(), "self-attention covers {tokens} tokens; the token grid has {}", grid.len());
    let cross_attn = if captures.kinds.contains(&CaptureKind::CrossAttn) {
        let rows = captures
            .layers
            .iter()
            .map(|&layer_idx| row_of(layer_idx, CaptureKind::CrossAttn))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0).context("stacking the layers' cross-attention")?
    } else {
        Tensor::zeros((layers, heads, 0), candle_core::DType::F32, self_attn.device())?
    };
    let maps =
        AttentionMaps { step_idx: query.step_idx, query_token: query.token, grid, self_attn, cross_attn };
    Ok((maps, captures.layers.clone()))
}

fn list(values: &[usize]) -> String {
    let shown: Vec<String> = values.iter().take(12).map(ToString::to_string).collect();
    let more = values.len().saturating_sub(12);
    if more > 0 { format!("{}, and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture() -> Document {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/exporter/tiny_wan_t2v.safetensors");
        Document::open(&path).unwrap()
    }

    #[test]
    fn a_stored_query_reads_its_row_of_every_captured_layer() {
        // The exporter fixture: layers [0, 1], query tokens [0, 5, 17], captures at steps 0 and 3
        // of seed 0, 2 heads, 18 tokens, 7 prompt tokens.
        let document = fixture();
        assert!(has_stored_attention(&document));
        let query = AttentionQuery { seed_idx: 0, step_idx: 3, token: 17 };
        let (maps, layers) = stored_attention(&document, query).unwrap();
        assert_eq!(layers, [0, 1]);
        assert_eq!(maps.self_attn.dims(), [2, 2, 18]);
        assert_eq!(maps.cross_attn.dims(), [2, 2, 7]);
        // Row 2 of `s0/k3/layer1/self_attn` [heads, Q, N] is token 17's.
        let stored = document.tensor(&TensorName::capture(0, 3, 1, CaptureKind::SelfAttn)).unwrap();
        let expected = stored.narrow(1, 2, 1).unwrap().squeeze(1).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(maps.self_attn.get(1).unwrap().to_vec2::<f32>().unwrap(), expected);
        // Softmax rows: each head's weights sum to 1 within f32 rounding.
        for layer in maps.self_attn.to_vec3::<f32>().unwrap() {
            for head in layer {
                assert!((head.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn a_token_or_step_the_file_does_not_hold_is_named() {
        let document = fixture();
        let not_stored = stored_attention(&document, AttentionQuery { seed_idx: 0, step_idx: 0, token: 4 });
        let message = format!("{:#}", not_stored.unwrap_err());
        assert!(message.contains("token #4 is not among") && message.contains("0, 5, 17"), "{message}");
        let no_capture = stored_attention(&document, AttentionQuery { seed_idx: 0, step_idx: 1, token: 5 });
        let message = format!("{:#}", no_capture.unwrap_err());
        assert!(message.contains("no captures at step 1") && message.contains("0, 3"), "{message}");
    }
}
