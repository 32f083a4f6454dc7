//! Wan's 3-D rotary position embedding.
//!
//! The head dimension `d` is split into frame, row and column parts (`t = d - 2h`, `h = w =
//! 2 * (d / 6)`); each part rotates interleaved pairs `(x[2i], x[2i+1])` by `pos * theta^(-2i/n)`
//! for its own axis position, with theta = 10000.
use candle_core::{DType, Device, Tensor};

use super::config::WanConfig;
use super::embeddings::TokenGrid;
use super::error::{ModelError, Result};

const ROPE_THETA: f64 = 10_000.0;

/// Per-axis rotation frequencies, computed once per model.
#[derive(Debug, Clone)]
pub struct Rope3d {
    /// Frequencies for the frame, row and column parts: `n / 2` values each.
    axis_freqs: [Vec<f64>; 3],
    max_positions: usize,
}

/// Rotation angles of every token, ready to apply: `cos` and `sin` are `[1, 1, N, d / 2]`
/// (one value per interleaved pair), f32.
#[derive(Debug, Clone)]
pub struct RopeAngles {
    pub cos: Tensor,
    pub sin: Tensor,
}

impl Rope3d {
    #[must_use]
    pub fn new(config: &WanConfig) -> Self {
        let axis_freqs = config
            .rope_axes()
            .map(|n| (0..n / 2).map(|i| 1.0 / ROPE_THETA.powf((2 * i) as f64 / n as f64)).collect());
        Self { axis_freqs, max_positions: config.rope_max_seq_len }
    }

    /// Angles for every token of `grid`, frame-major like the token sequence.
    pub fn angles(&self, grid: TokenGrid, device: &Device) -> Result<RopeAngles> {
        let longest = grid.frames.max(grid.rows).max(grid.cols);
        if longest > self.max_positions {
            return Err(ModelError::Input(format!(
                "token grid {}x{}x{} exceeds rope_max_seq_len {}",
                grid.frames, grid.rows, grid.cols, self.max_positions
            )));
        }
        let pairs: usize = self.axis_freqs.iter().map(Vec::len).sum();
        let mut cos = Vec::with_capacity(grid.len() * pairs);
        let mut sin = Vec::with_capacity(grid.len() * pairs);
        for token_idx in 0..grid.len() {
            let (frame, row, col) = grid.position(token_idx);
            for (freqs, pos) in self.axis_freqs.iter().zip([frame, row, col]) {
                for freq in freqs {
                    // In f64 like diffusers' rotary tables, then rounded once to f32.
                    let angle = pos as f64 * freq;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let shape = (1, 1, grid.len(), pairs);
        Ok(RopeAngles {
            cos: Tensor::from_vec(cos, shape, device)?,
            sin: Tensor::from_vec(sin, shape, device)?,
        })
    }
}

impl RopeAngles {
    /// Rotates `xs` `[B, heads, N, d]` pairwise: `(a, b) -> (a cos - b sin, a sin + b cos)`.
    pub fn apply(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, heads, tokens, head_dim) = xs.dims4()?;
        let dtype = xs.dtype();
        let pairs = xs.to_dtype(DType::F32)?.reshape((batch, heads, tokens, head_dim / 2, 2))?;
        let a = pairs.narrow(4, 0, 1)?.squeeze(4)?;
        let b = pairs.narrow(4, 1, 1)?.squeeze(4)?;
        let rotated_a = (a.broadcast_mul(&self.cos)? - b.broadcast_mul(&self.sin)?)?;
        let rotated_b = (a.broadcast_mul(&self.sin)? + b.broadcast_mul(&self.cos)?)?;
        let rotated = Tensor::stack(&[rotated_a, rotated_b], 4)?.reshape((batch, heads, tokens, head_dim))?;
        Ok(rotated.to_dtype(dtype)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_the_identity_and_norms_are_kept() {
        let config = WanConfig { attention_head_dim: 20, ..WanConfig::default() };
        let rope = Rope3d::new(&config);
        let grid = TokenGrid { frames: 2, rows: 3, cols: 3 };
        let angles = rope.angles(grid, &Device::Cpu).unwrap();
        let xs =
            Tensor::arange(0f32, (18 * 20) as f32, &Device::Cpu).unwrap().reshape((1, 1, 18, 20)).unwrap();
        let rotated = angles.apply(&xs).unwrap();
        let first_in: Vec<f32> = xs.get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
        let first_out: Vec<f32> = rotated.get(0).unwrap().get(0).unwrap().get(0).unwrap().to_vec1().unwrap();
        assert_eq!(first_in, first_out);
        let norm = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((norm(&xs) - norm(&rotated)).abs() / norm(&xs) < 1e-6);
    }

    #[test]
    fn grids_longer_than_the_table_are_an_error() {
        let config = WanConfig { rope_max_seq_len: 4, ..WanConfig::default() };
        let grid = TokenGrid { frames: 1, rows: 5, cols: 1 };
        assert!(Rope3d::new(&config).angles(grid, &Device::Cpu).is_err());
    }
}
