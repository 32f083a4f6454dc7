//! What a session records from inside the network at each step, and the reductions that turn
//! per-token block outputs into pictures.
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{Result, SessionError};
use crate::model::ForwardProbe;
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
/// where KINDS is a comma list of `x0`, `decoded`, `token_norm`, `pca3`, `self_attn`,
/// `cross_attn`, `hidden`, LAYERS is `all` or a comma list of indices and ranges (`0,2,4-7`), and QUERIES a comma list of
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
            skip_layers: Vec::new(),
        }
    }

    /// The layers that capture `kind`, in order.
    #[must_use]
    pub fn layers_with(&self, kind: CaptureKind) -> Vec<usize> {
        self.layers
            .iter()
            .filter(|(_, kinds)| kinds.contains(&kind))
            .map(|&(layer_idx, _)| layer_idx)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
