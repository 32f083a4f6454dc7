//! Reductions of a block's tokens `[1, N, D]` into pictures on the token grid.
use candle_core::{D, DType, Tensor};

use super::error::Result;
use crate::model::TokenGrid;

/// L2 norm of each token: `[1, N, D]` -> `[F', H', W']`, f32.
pub fn token_norms(hidden: &Tensor, grid: TokenGrid) -> Result<Tensor> {
    let norms = hidden.to_dtype(DType::F32)?.sqr()?.sum(D::Minus1)?.sqrt()?;
    Ok(norms.reshape((grid.frames, grid.rows, grid.cols))?)
}

/// The tokens as a channels-first grid: `[1, N, D]` -> `[D, F', H', W']`, f32.
pub fn channels_first(hidden: &Tensor, grid: TokenGrid) -> Result<Tensor> {
    let tokens = hidden.to_dtype(DType::F32)?.squeeze(0)?;
    let width = tokens.dim(1)?;
    Ok(tokens.t()?.contiguous()?.reshape((width, grid.frames, grid.rows, grid.cols))?)
}

/// Iterations of the block power method; the tokens of one step converge well before this.
const PCA_ITERATIONS: usize = 60;

/// Projections of the centred tokens on their first three principal components:
/// `[1, N, D]` -> `[3, F', H', W']`, f32.
///
/// Block power iteration on `X^T X` (through the `D x D` Gram matrix when `D <= N`, otherwise as
/// `X^T (X V)` so no `D x D` matrix is formed).
/// Deterministic: starts from a fixed basis; each component's sign makes its largest loading
/// positive, so colours are stable from step to step.
pub fn pca3(hidden: &Tensor, grid: TokenGrid) -> Result<Tensor> {
    let tokens = hidden.to_dtype(DType::F32)?.squeeze(0)?;
    let (num_tokens, width) = tokens.dims2()?;
    let centred = tokens.broadcast_sub(&tokens.mean_keepdim(0)?)?;
    let components = 3.min(width);
    // A fixed, well-spread start: column j has ones where i % components == j, plus a ramp.
    let start: Vec<f32> = (0..width * components)
        .map(|idx| {
            let (i, j) = (idx / components, idx % components);
            let diagonal = if i % components == j { 1.0 } else { 0.0 };
            diagonal + (i as f32 + 1.0) / (width as f32 * 10.0)
        })
        .collect();
    let mut basis = Tensor::from_vec(start, (width, components), tokens.device())?;
    let centred_t = centred.t()?.contiguous()?;
    // Apply X^T X either through its D x D Gram matrix, formed once (cheap when D <= N), or as
    // X^T (X V) each time (when D > N, so no D x D matrix is ever formed).
    let gram = if width <= num_tokens { Some(centred_t.matmul(&centred)?) } else { None };
    for _ in 0..PCA_ITERATIONS {
        let grown = match &gram {
            Some(gram) => gram.matmul(&basis)?,
            None => centred_t.matmul(&centred.matmul(&basis)?)?,
        };
        basis = orthonormal_columns(&grown)?;
    }
    let basis = fix_signs(&basis)?;
    let projections = centred.matmul(&basis)?; // [N, k]
    let mut projections = projections.t()?.contiguous()?;
    if components < 3 {
        let pad = Tensor::zeros((3 - components, num_tokens), DType::F32, tokens.device())?;
        projections = Tensor::cat(&[projections, pad], 0)?;
    }
    Ok(projections.reshape((3, grid.frames, grid.rows, grid.cols))?)
}

/// Gram-Schmidt on the columns of a small `[D, k]` matrix (k <= 3), on the host.
fn orthonormal_columns(matrix: &Tensor) -> Result<Tensor> {
    let (rows, cols) = matrix.dims2()?;
    let data = matrix.t()?.contiguous()?.to_vec2::<f32>()?;
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(cols);
    for column in data {
        let mut v: Vec<f64> = column.into_iter().map(f64::from).collect();
        for b in &basis {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let inverse = if norm > 1e-30 { 1.0 / norm } else { 0.0 };
        for x in &mut v {
            *x *= inverse;
        }
        basis.push(v);
    }
    let flat: Vec<f32> = basis.into_iter().flatten().map(|x| x as f32).collect();
    Ok(Tensor::from_vec(flat, (cols, rows), matrix.device())?.t()?.contiguous()?)
}

/// Flips each column so its largest-magnitude entry is positive.
fn fix_signs(basis: &Tensor) -> Result<Tensor> {
    let columns = basis.t()?.contiguous()?.to_vec2::<f32>()?;
    let signs: Vec<f32> = columns
        .iter()
        .map(|col| {
            let peak = col.iter().copied().fold(0f32, |acc, x| if x.abs() > acc.abs() { x } else { acc });
            if peak < 0.0 { -1.0 } else { 1.0 }
        })
        .collect();
    let signs = Tensor::from_vec(signs, (1, columns.len()), basis.device())?;
    Ok(basis.broadcast_mul(&signs)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn channels_first_puts_token_t_channel_d_at_d_t() {
        // 2 frames x 1 x 3 tokens of width 4: value = 10 * token + channel.
        let grid = TokenGrid { frames: 2, rows: 1, cols: 3 };
        let values: Vec<f32> = (0..6).flat_map(|t| (0..4).map(move |d| (10 * t + d) as f32)).collect();
        let hidden = Tensor::from_vec(values, (1, 6, 4), &Device::Cpu).unwrap();
        let grid_first = channels_first(&hidden, grid).unwrap();
        assert_eq!(grid_first.dims(), &[4, 2, 1, 3]);
        let out = grid_first.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for d in 0..4 {
            for t in 0..6 {
                assert_eq!(out[d * 6 + t].to_bits(), ((10 * t + d) as f32).to_bits());
            }
        }
    }

    #[test]
    fn pca_finds_the_dominant_direction() {
        // Tokens spread along (1, 1, 0, 0) with small noise in the other axes.
        let n = 12;
        let data: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t = i as f32 - 5.5;
                [t, t, 0.01 * (i % 3) as f32, 0.02 * (i % 2) as f32]
            })
            .collect();
        let hidden = Tensor::from_vec(data, (1, n, 4), &Device::Cpu).unwrap();
        let grid = TokenGrid { frames: 1, rows: 3, cols: 4 };
        let pcs = pca3(&hidden, grid).unwrap();
        assert_eq!(pcs.dims(), &[3, 1, 3, 4]);
        let first: Vec<f32> = pcs.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        // Projection on (1,1)/sqrt(2) is t * sqrt(2), up to sign.
        for (i, value) in first.iter().enumerate() {
            let expected = (i as f32 - 5.5) * std::f32::consts::SQRT_2;
            assert!((value.abs() - expected.abs()).abs() < 1e-3, "{i}: {value} vs {expected}");
        }
        let norms = token_norms(&hidden, grid).unwrap();
        assert_eq!(norms.dims(), &[1, 3, 4]);
    }

    #[test]
    fn pca_works_when_tokens_are_fewer_than_channels() {
        // 6 tokens in 20 dimensions along one direction: the X^T (X V) path.
        let direction: Vec<f32> = (0..20).map(|d| if d % 2 == 0 { 0.5 } else { -0.25 }).collect();
        let norm = direction.iter().map(|x| x * x).sum::<f32>().sqrt();
        let data: Vec<f32> =
            (0..6).flat_map(|i| direction.iter().map(move |x| x * (i as f32 - 2.5))).collect();
        let hidden = Tensor::from_vec(data, (1, 6, 20), &Device::Cpu).unwrap();
        let pcs = pca3(&hidden, TokenGrid { frames: 1, rows: 2, cols: 3 }).unwrap();
        let first: Vec<f32> = pcs.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, value) in first.iter().enumerate() {
            let expected = (i as f32 - 2.5) * norm;
            assert!((value.abs() - expected.abs()).abs() < 1e-3, "{i}: {value} vs {expected}");
        }
    }
}
