//! An attention answer from the engine, ready to draw: for every layer, one map over the video's
//! tokens per head and their mean (each a `[1, F', H', W']` tensor for the colormap shader), and
//! the weights on the prompt tokens.

use anyhow::{Context as _, Result, ensure};
use stepscope_engine::session::AttentionMaps;

use super::gpu::{GpuTensor, ImageKey};

/// A head, or the mean over the heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeadPick {
    Head(usize),
    Mean,
}

impl HeadPick {
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Head(head_idx) => format!("head {head_idx}"),
            Self::Mean => "head mean".to_owned(),
        }
    }
}

/// Where one query token attends at one step of one seed, on the host.
#[derive(Debug, Clone)]
pub struct AttentionData {
    pub seed_idx: usize,
    pub step_idx: usize,
    /// The query's flat token index, and its `(frame, row, column)` in the token grid.
    pub query_token: usize,
    pub query_position: (usize, usize, usize),
    /// `[F', H', W']`.
    pub grid: [usize; 3],
    pub layers: usize,
    /// The model's index of each layer row (all layers for a live answer; the captured ones for
    /// attention stored in a file).
    pub layer_names: Vec<usize>,
    /// The query tokens a file stores attention for, when this answer was read from one (empty
    /// for a live answer).
    pub stored_tokens: Vec<usize>,
    pub heads: usize,
    pub text_len: usize,
    /// Per layer, `heads + 1` maps `[1, F', H', W']`: the heads, then their mean.
    maps: Vec<GpuTensor>,
    /// `[layers, heads, text_len]`, row-major.
    cross: Vec<f32>,
}

impl AttentionData {
    /// Copies `maps` to the host; `id` tells this answer's tensors apart from earlier ones on
    /// the GPU.
    pub fn new(seed_idx: usize, maps: &AttentionMaps, id: u64) -> Result<Self> {
        let grid = [maps.grid.frames, maps.grid.rows, maps.grid.cols];
        let self_attn = maps.self_attn.to_vec3::<f32>().context("reading the self-attention maps")?;
        let cross_attn = maps.cross_attn.to_vec3::<f32>().context("reading the cross-attention weights")?;
        let layers = self_attn.len();
        let heads = self_attn.first().map_or(0, Vec::len);
        let text_len = cross_attn.first().and_then(|layer| layer.first()).map_or(0, Vec::len);
        ensure!(layers > 0 && heads > 0, "the engine returned no attention maps");
        ensure!(cross_attn.len() == layers, "self- and cross-attention cover different layers");
        let tokens = maps.grid.len();
        let shape = [1, grid[0], grid[1], grid[2]];
        let mut tensors = Vec::with_capacity(layers * (heads + 1));
        for (layer_idx, layer) in self_attn.iter().enumerate() {
            let mut mean = vec![0.0_f32; tokens];
            for (head_idx, row) in layer.iter().enumerate() {
                ensure!(row.len() == tokens, "layer {layer_idx} head {head_idx} has {} weights", row.len());
                for (sum, &value) in mean.iter_mut().zip(row) {
                    *sum += value / heads as f32;
                }
                tensors.push(map_tensor(id, layer_idx, HeadPick::Head(head_idx), row.clone(), shape)?);
            }
            tensors.push(map_tensor(id, layer_idx, HeadPick::Mean, mean, shape)?);
        }
        let (f, r, c) = maps.grid.position(maps.query_token);
        Ok(Self {
            seed_idx,
            step_idx: maps.step_idx,
            query_token: maps.query_token,
            query_position: (f, r, c),
            grid,
            layers,
            layer_names: (0..layers).collect(),
            stored_tokens: Vec::new(),
            heads,
            text_len,
            maps: tensors,
            cross: cross_attn.into_iter().flatten().flatten().collect(),
        })
    }

    /// The answer read from a file's captures: its rows are the model's layers `layer_names`,
    /// and `stored_tokens` are the query tokens the file holds.
    pub fn stored(mut self, layer_names: Vec<usize>, stored_tokens: Vec<usize>) -> Result<Self> {
        ensure!(
            layer_names.len() == self.layers,
            "{} layer names for {} layers",
            layer_names.len(),
            self.layers
        );
        self.layer_names = layer_names;
        self.stored_tokens = stored_tokens;
        Ok(self)
    }

    /// The model's index of layer row `layer_idx`.
    #[must_use]
    pub fn layer_name(&self, layer_idx: usize) -> usize {
        self.layer_names.get(layer_idx).copied().unwrap_or(layer_idx)
    }

    /// The map of `layer_idx` for `pick`, `[1, F', H', W']`.
    #[must_use]
    pub fn map(&self, layer_idx: usize, pick: HeadPick) -> Option<&GpuTensor> {
        let column = match pick {
            HeadPick::Head(head_idx) if head_idx < self.heads => head_idx,
            HeadPick::Head(_) => return None,
            HeadPick::Mean => self.heads,
        };
        if layer_idx >= self.layers {
            return None;
        }
        self.maps.get(layer_idx * (self.heads + 1) + column)
    }

    /// The weight on token `(frame, row, column)` in the map of `layer_idx` for `pick`.
    #[must_use]
    pub fn weight(&self, layer_idx: usize, pick: HeadPick, (f, r, c): (usize, usize, usize)) -> Option<f32> {
        let [frames, rows, cols] = self.grid;
        if f >= frames || r >= rows || c >= cols {
            return None;
        }
        self.map(layer_idx, pick)?.values().get((f * rows + r) * cols + c).copied()
    }

    /// `[0, max]` over every head's map (not the means): one scale for the whole grid.
    #[must_use]
    pub fn shared_range(&self) -> [f32; 2] {
        let max = self
            .maps
            .iter()
            .filter_map(|map| map.channel_range(0))
            .map(|[_, max]| max)
            .fold(0.0_f32, f32::max);
        [0.0, if max > 0.0 { max } else { 1.0 }]
    }

    /// The cross-attention weights of `layer_idx` for `pick` on each prompt token.
    #[must_use]
    pub fn cross_weights(&self, layer_idx: usize, pick: HeadPick) -> Vec<f32> {
        let row = |head_idx: usize| {
            let start = (layer_idx * self.heads + head_idx) * self.text_len;
            self.cross.get(start..start + self.text_len).unwrap_or(&[])
        };
        if layer_idx >= self.layers {
            return Vec::new();
        }
        match pick {
            HeadPick::Head(head_idx) if head_idx < self.heads => row(head_idx).to_vec(),
            HeadPick::Head(_) => Vec::new(),
            HeadPick::Mean => (0..self.text_len)
                .map(|token| (0..self.heads).map(|head| row(head)[token]).sum::<f32>() / self.heads as f32)
                .collect(),
        }
    }
}

fn map_tensor(
    id: u64,
    layer_idx: usize,
    pick: HeadPick,
    values: Vec<f32>,
    shape: [usize; 4],
) -> Result<GpuTensor> {
    GpuTensor::new(ImageKey::of(&("attention", id, layer_idx, pick)), values, shape)
        .with_context(|| format!("layer {layer_idx} {}: a map of an unexpected size", pick.label()))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use stepscope_engine::model::TokenGrid;

    use super::*;

    /// Synthetic maps: 2 layers, 2 heads, a 2 x 1 x 2 grid (4 tokens), 3 prompt tokens.
    fn synthetic() -> AttentionMaps {
        let self_attn: Vec<f32> = vec![
            0.1, 0.2, 0.3, 0.4, /* l0 h0 */ 0.4, 0.3, 0.2, 0.1, /* l0 h1 */
            1.0, 0.0, 0.0, 0.0, /* l1 h0 */ 0.0, 0.0, 0.0, 1.0, /* l1 h1 */
        ];
        let cross: Vec<f32> = vec![0.2, 0.3, 0.5, 0.6, 0.3, 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        AttentionMaps {
            step_idx: 3,
            query_token: 3,
            grid: TokenGrid { frames: 2, rows: 1, cols: 2 },
            self_attn: Tensor::from_vec(self_attn, (2, 2, 4), &Device::Cpu).unwrap(),
            cross_attn: Tensor::from_vec(cross, (2, 2, 3), &Device::Cpu).unwrap(),
        }
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "the values are copied or exact sums of halves")]
    fn maps_split_by_layer_and_head_with_the_head_mean_last() {
        let data = AttentionData::new(1, &synthetic(), 0).unwrap();
        assert_eq!((data.layers, data.heads, data.text_len), (2, 2, 3));
        assert_eq!(data.query_position, (1, 0, 1));
        assert_eq!(data.map(0, HeadPick::Head(1)).unwrap().values(), [0.4, 0.3, 0.2, 0.1]);
        assert_eq!(data.map(0, HeadPick::Head(0)).unwrap().shape(), [1, 2, 1, 2]);
        let mean = data.map(1, HeadPick::Mean).unwrap().values();
        assert_eq!(mean, [0.5, 0.0, 0.0, 0.5]);
        assert_eq!(data.weight(1, HeadPick::Head(1), (1, 0, 1)), Some(1.0));
        assert_eq!(data.weight(1, HeadPick::Head(1), (2, 0, 0)), None);
        assert!(data.map(2, HeadPick::Mean).is_none());
        assert!(data.map(0, HeadPick::Head(2)).is_none());
        assert_eq!(data.shared_range(), [0.0, 1.0]);
    }

    #[test]
    fn cross_weights_per_head_and_their_mean() {
        let data = AttentionData::new(0, &synthetic(), 0).unwrap();
        assert_eq!(data.cross_weights(0, HeadPick::Head(1)), [0.6, 0.3, 0.1]);
        let mean = data.cross_weights(0, HeadPick::Mean);
        for (got, want) in mean.iter().zip([0.4, 0.3, 0.3]) {
            assert!((got - want).abs() < 1e-6, "{mean:?}");
        }
        assert!(data.cross_weights(5, HeadPick::Mean).is_empty());
    }

    #[test]
    fn distinct_answers_get_distinct_gpu_keys() {
        let a = AttentionData::new(0, &synthetic(), 1).unwrap();
        let b = AttentionData::new(0, &synthetic(), 2).unwrap();
        assert_ne!(a.map(0, HeadPick::Mean).unwrap().key(), b.map(0, HeadPick::Mean).unwrap().key());
    }
}
