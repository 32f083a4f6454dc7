//! What a session records from inside the network at each step, and the reductions that turn
//! per-token block outputs into pictures.
use std::str::FromStr;

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use super::error::{Result, SessionError};
use crate::model::{ForwardProbe, TokenGrid};
pub use crate::trajectory::CaptureKind;

/// Which layers to capture, before the model's depth is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSelection {
    All,
    Only(Vec<usize>),
}

/// One group of a capture request: these kinds at these layers (and, for attention, these
/// query tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureGroup {
    pub kinds: Vec<CaptureKind>,
    pub layers: LayerSelection,
    /// Query token indices for attention kinds (frame-major token order).
    pub queries: Vec<u32>,
}

/// What to capture at every step. Empty (the default) captures nothing and costs nothing.
///
/// Text form (the `--capture` flag): groups separated by `;`, each `KINDS@LAYERS[:q=QUERIES]`,
/// where KINDS is a comma list of `decoded`, `token_norm`, `pca3`, `self_attn`, `cross_attn`,
/// LAYERS is `all` or a comma list of indices and ranges (`0,2,4-7`), and QUERIES a comma list of
/// token indices (and ranges), required by the attention kinds. Example:
/// `decoded,token_norm,pca3@all;self_attn,cross_attn@3,5:q=0,17`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    pub groups: Vec<CaptureGroup>,
}

/// A capture request resolved against a model: per layer, the kinds to keep (the same kinds at
/// every captured layer: the union of what was asked, as the trajectory file stores a grid).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedCapture {
    /// `(layer_idx, kinds)` sorted by layer, kinds sorted and distinct.
    pub layers: Vec<(usize, Vec<CaptureKind>)>,
    /// Query tokens for attention captures (one list for the whole run).
    pub queries: Vec<u32>,
}

impl CaptureSpec {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|group| group.kinds.is_empty())
    }

    /// Resolves layer lists against a model of `num_layers` blocks with `num_tokens` tokens,
    /// checking every index.
    pub fn resolve(&self, num_layers: usize, num_tokens: usize) -> Result<ResolvedCapture> {
        let mut per_layer: Vec<Vec<CaptureKind>> = vec![Vec::new(); num_layers];
        let mut queries: Option<&Vec<u32>> = None;
        for group in &self.groups {
            let layers = match &group.layers {
                LayerSelection::All => (0..num_layers).collect(),
                LayerSelection::Only(layers) => layers.clone(),
            };
            if let Some(&bad) = layers.iter().find(|&&layer_idx| layer_idx >= num_layers) {
                return Err(SessionError::Capture(format!(
                    "layer {bad} does not exist (the model has {num_layers} layers, 0..={})",
                    num_layers.saturating_sub(1)
                )));
            }
            if group.kinds.iter().any(|kind| kind.is_attention()) {
                if group.queries.is_empty() {
                    return Err(SessionError::Capture(
                        "attention captures need query tokens (`:q=...`)".to_owned(),
                    ));
                }
                if let Some(&bad) = group.queries.iter().find(|&&q| q as usize >= num_tokens) {
                    return Err(SessionError::Capture(format!(
                        "query token {bad} does not exist (the latent has {num_tokens} tokens)"
                    )));
                }
                match queries {
                    Some(existing) if existing != &group.queries => {
                        return Err(SessionError::Capture(
                            "all attention groups must use the same query tokens".to_owned(),
                        ));
                    }
                    _ => queries = Some(&group.queries),
                }
            }
            for layer_idx in layers {
                per_layer[layer_idx].extend(group.kinds.iter().copied());
            }
        }
        // A trajectory file stores one grid of layers x kinds, so every requested layer gets
        // the union of the requested kinds.
        let mut kinds: Vec<CaptureKind> = per_layer.iter().flatten().copied().collect();
        kinds.sort_unstable();
        kinds.dedup();
        let layers = per_layer
            .iter()
            .enumerate()
            .filter(|(_, requested)| !requested.is_empty())
            .map(|(layer_idx, _)| (layer_idx, kinds.clone()))
            .collect();
        Ok(ResolvedCapture { layers, queries: queries.cloned().unwrap_or_default() })
    }
}

impl ResolvedCapture {
    /// The forward-pass probe that yields what these captures need.
    #[must_use]
    pub fn probe(&self) -> ForwardProbe {
        let needs = |pred: fn(CaptureKind) -> bool| {
            self.layers
                .iter()
                .filter(|(_, kinds)| kinds.iter().any(|&kind| pred(kind)))
                .map(|&(layer_idx, _)| layer_idx)
                .collect::<Vec<_>>()
        };
        let attention_layers = needs(CaptureKind::is_attention);
        ForwardProbe {
            hidden_layers: needs(|kind| !kind.is_attention()),
            query_tokens: if attention_layers.is_empty() { Vec::new() } else { self.queries.clone() },
            attention_layers,
        }
    }

    /// The kinds captured at `layer_idx` (empty if none).
    #[must_use]
    pub fn kinds_at(&self, layer_idx: usize) -> &[CaptureKind] {
        self.layers.iter().find(|(l, _)| *l == layer_idx).map_or(&[], |(_, kinds)| kinds.as_slice())
    }
}

impl FromStr for CaptureSpec {
    type Err = SessionError;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |what: String| SessionError::Capture(format!("`{text}`: {what}"));
        let mut groups = Vec::new();
        for group_text in text.split(';').map(str::trim).filter(|g| !g.is_empty()) {
            let (kinds_text, rest) = group_text
                .split_once('@')
                .ok_or_else(|| bad(format!("group `{group_text}` needs `@LAYERS` (e.g. `decoded@all`)")))?;
            let (layers_text, queries_text) = match rest.split_once(':') {
                Some((layers, queries)) => {
                    let queries = queries
                        .strip_prefix("q=")
                        .ok_or_else(|| bad(format!("expected `q=` after `:` in `{group_text}`")))?;
                    (layers, Some(queries))
                }
                None => (rest, None),
            };
            let kinds =
                kinds_text.split(',').map(|k| parse_kind(k.trim())).collect::<Result<Vec<CaptureKind>>>()?;
            let layers = if layers_text.trim() == "all" {
                LayerSelection::All
            } else {
                LayerSelection::Only(parse_index_list(layers_text).map_err(&bad)?)
            };
            let queries = match queries_text {
                Some(q) => parse_index_list(q)
                    .map_err(&bad)?
                    .into_iter()
                    .map(|i| u32::try_from(i).map_err(|_| bad(format!("query {i} is too large"))))
                    .collect::<Result<Vec<u32>>>()?,
                None => Vec::new(),
            };
            groups.push(CaptureGroup { kinds, layers, queries });
        }
        Ok(Self { groups })
    }
}

fn parse_kind(name: &str) -> Result<CaptureKind> {
    CaptureKind::from_name(name).ok_or_else(|| {
        let known: Vec<_> = CaptureKind::ALL.iter().map(|k| k.as_str()).collect();
        SessionError::Capture(format!("unknown capture kind `{name}` (known: {})", known.join(", ")))
    })
}

/// Longest index range accepted in a list (`a-b`), so a typo cannot ask for billions of entries.
const MAX_RANGE_LEN: usize = 1 << 16;

/// Parses `0,2,4-7` into `[0, 2, 4, 5, 6, 7]`.
fn parse_index_list(text: &str) -> std::result::Result<Vec<usize>, String> {
    let mut indices = Vec::new();
    for item in text.split(',').map(str::trim) {
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("`{s}` is not an index"));
        match item.split_once('-') {
            Some((start, end)) => {
                let (start, end) = (parse(start)?, parse(end)?);
                if end < start || end - start >= MAX_RANGE_LEN {
                    return Err(format!("range `{item}` is empty or too long"));
                }
                indices.extend(start..=end);
            }
            None => indices.push(parse(item)?),
        }
    }
    Ok(indices)
}

/// L2 norm of each token: `[1, N, D]` -> `[F', H', W']`, f32.
pub fn token_norms(hidden: &Tensor, grid: TokenGrid) -> Result<Tensor> {
    let norms = hidden.to_dtype(DType::F32)?.sqr()?.sum(D::Minus1)?.sqrt()?;
    Ok(norms.reshape((grid.frames, grid.rows, grid.cols))?)
}

/// Iterations of the block power method; the tokens of one step converge well before this.
const PCA_ITERATIONS: usize = 60;

/// Projections of the centred tokens on their first three principal components:
/// `[1, N, D]` -> `[3, F', H', W']`, f32.
///
/// Block power iteration on `X^T X` applied as `X^T (X V)`, so no `D x D` matrix is formed.
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
    for _ in 0..PCA_ITERATIONS {
        let grown = centred_t.matmul(&centred.matmul(&basis)?)?;
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
    fn parses_the_documented_example() {
        let spec: CaptureSpec =
            "decoded,token_norm,pca3@all;self_attn,cross_attn@3,5:q=0,17".parse().unwrap();
        assert_eq!(spec.groups.len(), 2);
        assert_eq!(spec.groups[0].layers, LayerSelection::All);
        assert_eq!(spec.groups[1].layers, LayerSelection::Only(vec![3, 5]));
        assert_eq!(spec.groups[1].queries, vec![0, 17]);
        let resolved = spec.resolve(6, 48).unwrap();
        assert_eq!(resolved.kinds_at(3).len(), 5);
        assert_eq!(resolved.kinds_at(0).len(), 5, "the grid is uniform");
        let probe = resolved.probe();
        assert_eq!(probe.hidden_layers, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(probe.attention_layers, vec![0, 1, 2, 3, 4, 5]);
        let spec: CaptureSpec = "token_norm@1,3".parse().unwrap();
        let resolved = spec.resolve(6, 48).unwrap();
        assert_eq!(
            resolved.layers,
            vec![(1, vec![CaptureKind::TokenNorm]), (3, vec![CaptureKind::TokenNorm])]
        );
        assert!(resolved.probe().attention_layers.is_empty());
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        for (text, needle) in [
            ("decoded", "@LAYERS"),
            ("decoder@all", "unknown capture kind"),
            ("decoded@x", "not an index"),
            ("decoded@9-2", "range"),
            ("self_attn@1:r=3", "q="),
        ] {
            let message = text.parse::<CaptureSpec>().unwrap_err().to_string();
            assert!(message.contains(needle), "{text}: {message}");
        }
        let spec: CaptureSpec = "self_attn@1".parse().unwrap();
        assert!(spec.resolve(4, 10).unwrap_err().to_string().contains("query"));
        let spec: CaptureSpec = "decoded@7".parse().unwrap();
        assert!(spec.resolve(4, 10).unwrap_err().to_string().contains("layer 7"));
    }

    #[test]
    fn the_empty_spec_probes_nothing() {
        let resolved = CaptureSpec::default().resolve(4, 10).unwrap();
        assert_eq!(resolved.probe(), ForwardProbe::default());
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
}
