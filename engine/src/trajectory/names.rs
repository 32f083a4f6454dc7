//! Tensor names: the public contract between writers and readers of trajectory files.
//!
//! Every tensor in a trajectory file is named by exactly one of these forms (indices are 0-based
//! decimal numbers without leading zeros):
//!
//! | Name                                  | Holds                                           |
//! |---------------------------------------|-------------------------------------------------|
//! | `s{seed}/k{step}/latents`             | the latents entering denoising step `step`      |
//! | `s{seed}/k{step}/velocity`            | the velocity the model predicted at that step   |
//! | `s{seed}/k{step}/x0`                  | the predicted clean latents `x_t - sigma * v`   |
//! | `s{seed}/final/latents`               | the latents after the last step                 |
//! | `s{seed}/k{step}/layer{layer}/{kind}` | a capture of transformer block `layer` ([`CaptureKind`]) |

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a per-step tensor holds. All three are `[C, F, H, W]` latents-shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepTensor {
    /// The noisy latents `x_t` that enter the denoising step.
    Latents,
    /// The velocity `v = eps - x0` the model predicted from those latents.
    Velocity,
    /// The predicted clean latents `x0_hat = x_t - sigma * v`.
    X0,
}

impl StepTensor {
    /// Every step tensor, in file order.
    pub const ALL: [Self; 3] = [Self::Latents, Self::Velocity, Self::X0];

    /// The name's last component (`latents`, `velocity`, `x0`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Latents => "latents",
            Self::Velocity => "velocity",
            Self::X0 => "x0",
        }
    }

    fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for StepTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a per-layer capture holds. `F' x H' x W'` is the token grid (latent shape divided by
/// the patch size), `Q` the number of attention query tokens listed in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    /// The logit-lens picture: the block's hidden states sent through the output head and
    /// unpatchified, `[C, F, H, W]`.
    Decoded,
    /// The L2 norm of each token's hidden state, `[F', H', W']`.
    TokenNorm,
    /// The first three principal components of the hidden states, `[3, F', H', W']`.
    Pca3,
    /// Self-attention probabilities of the query tokens over all tokens, `[heads, Q, F'*H'*W']`.
    SelfAttn,
    /// Cross-attention probabilities of the query tokens over the text tokens,
    /// `[heads, Q, text_len]`.
    CrossAttn,
    /// The block's output tokens themselves, channels first: `[D, F', H', W']` (for probes and
    /// any analysis done elsewhere).
    Hidden,
    /// The layer's prediction of the clean video, `[C, F, H, W]`: `x_t - sigma * v_l`, where
    /// `v_l` is the output head applied to the block's output, combined over the conditional and
    /// unconditional passes as the sampler combines the final velocity when guidance is on, with
    /// the condition frames re-imposed. At the last layer it is `x0_hat`.
    X0,
}

impl CaptureKind {
    /// Every capture kind, in file order.
    pub const ALL: [Self; 7] =
        [Self::Decoded, Self::TokenNorm, Self::Pca3, Self::SelfAttn, Self::CrossAttn, Self::Hidden, Self::X0];

    /// The name's last component (`decoded`, `token_norm`, `pca3`, `self_attn`, `cross_attn`,
    /// `hidden`, `x0`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Decoded => "decoded",
            Self::TokenNorm => "token_norm",
            Self::Pca3 => "pca3",
            Self::SelfAttn => "self_attn",
            Self::CrossAttn => "cross_attn",
            Self::Hidden => "hidden",
            Self::X0 => "x0",
        }
    }

    /// Whether this kind is an attention map, which needs the manifest's query tokens.
    #[must_use]
    pub const fn is_attention(self) -> bool {
        matches!(self, Self::SelfAttn | Self::CrossAttn)
    }

    /// The kind named `text` (`decoded`, `token_norm`, ...), if any.
    #[must_use]
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for CaptureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of one tensor in a trajectory file, parsed.
///
/// `Display` writes the canonical string form and [`FromStr`] parses it back; the two are exact
/// inverses. The ordering is the order tensors are laid out in a file: by seed, then by step
/// (the final latents after every step), and within a step the step tensors before the captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorName {
    /// `s{seed_idx}/k{step_idx}/{kind}`.
    Step {
        /// Index of the seed in the manifest's seed list.
        seed_idx: usize,
        /// Index of the denoising step the tensor enters (0-based).
        step_idx: usize,
        /// Which per-step tensor.
        kind: StepTensor,
    },
    /// `s{seed_idx}/final/latents`.
    Final {
        /// Index of the seed in the manifest's seed list.
        seed_idx: usize,
    },
    /// `s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}`.
    Capture {
        /// Index of the seed in the manifest's seed list.
        seed_idx: usize,
        /// Index of the denoising step the capture was taken in (0-based).
        step_idx: usize,
        /// Index of the transformer block (0-based).
        layer_idx: usize,
        /// What was captured.
        kind: CaptureKind,
    },
    /// `s{seed_idx}/k{step_idx}/video`: the step's `x0` decoded to pixels.
    Video {
        /// Index of the seed in the manifest's seed list.
        seed_idx: usize,
        /// Index of the denoising step whose `x0` was decoded (0-based).
        step_idx: usize,
    },
}

/// A tensor's place among the tensors of its step: group (step tensors, video, captures), then
/// the step tensor's kind or the capture's layer and kind.
type WithinStep = (u8, Option<StepTensor>, Option<(usize, CaptureKind)>);

impl TensorName {
    /// `s{seed_idx}/k{step_idx}/latents`.
    #[must_use]
    pub const fn latents(seed_idx: usize, step_idx: usize) -> Self {
        Self::Step { seed_idx, step_idx, kind: StepTensor::Latents }
    }

    /// `s{seed_idx}/k{step_idx}/velocity`.
    #[must_use]
    pub const fn velocity(seed_idx: usize, step_idx: usize) -> Self {
        Self::Step { seed_idx, step_idx, kind: StepTensor::Velocity }
    }

    /// `s{seed_idx}/k{step_idx}/x0`.
    #[must_use]
    pub const fn x0(seed_idx: usize, step_idx: usize) -> Self {
        Self::Step { seed_idx, step_idx, kind: StepTensor::X0 }
    }

    /// `s{seed_idx}/final/latents`.
    #[must_use]
    pub const fn final_latents(seed_idx: usize) -> Self {
        Self::Final { seed_idx }
    }

    /// `s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}`.
    #[must_use]
    pub const fn capture(seed_idx: usize, step_idx: usize, layer_idx: usize, kind: CaptureKind) -> Self {
        Self::Capture { seed_idx, step_idx, layer_idx, kind }
    }

    /// The seed index the tensor belongs to.
    #[must_use]
    pub const fn seed_idx(&self) -> usize {
        match *self {
            Self::Step { seed_idx, .. }
            | Self::Final { seed_idx }
            | Self::Capture { seed_idx, .. }
            | Self::Video { seed_idx, .. } => seed_idx,
        }
    }

    /// The step the tensor belongs to; `None` for the final latents.
    #[must_use]
    pub const fn step_idx(&self) -> Option<usize> {
        match *self {
            Self::Step { step_idx, .. } | Self::Capture { step_idx, .. } | Self::Video { step_idx, .. } => {
                Some(step_idx)
            }
            Self::Final { .. } => None,
        }
    }

    /// The key that orders names in file order.
    /// Seed, then `final` after the steps; within a step the step tensors, the video, then the
    /// captures by layer and kind.
    fn order_key(&self) -> (usize, bool, usize, WithinStep) {
        match *self {
            Self::Step { seed_idx, step_idx, kind } => (seed_idx, false, step_idx, (0, Some(kind), None)),
            Self::Video { seed_idx, step_idx } => (seed_idx, false, step_idx, (1, None, None)),
            Self::Capture { seed_idx, step_idx, layer_idx, kind } => {
                (seed_idx, false, step_idx, (2, None, Some((layer_idx, kind))))
            }
            Self::Final { seed_idx } => (seed_idx, true, 0, (0, None, None)),
        }
    }
}

impl Ord for TensorName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for TensorName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step { seed_idx, step_idx, kind } => write!(f, "s{seed_idx}/k{step_idx}/{kind}"),
            Self::Final { seed_idx } => write!(f, "s{seed_idx}/final/latents"),
            Self::Capture { seed_idx, step_idx, layer_idx, kind } => {
                write!(f, "s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}")
            }
            Self::Video { seed_idx, step_idx } => write!(f, "s{seed_idx}/k{step_idx}/video"),
        }
    }
}

/// A string that is not a valid trajectory tensor name, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a trajectory tensor name: {reason}")]
pub struct TensorNameError {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for TensorName {
    type Err = TensorNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TensorNameError { name: name.to_owned(), reason };
        let parts: Vec<&str> = name.split('/').collect();
        let (seed_part, step_part, rest) = match parts.as_slice() {
            [seed, step, rest @ ..] if !rest.is_empty() && rest.len() <= 2 => (*seed, *step, rest),
            _ => return Err(fail("expected 3 or 4 `/`-separated parts")),
        };
        let seed_idx = parse_index(seed_part, "s")
            .ok_or_else(|| fail("the first part must be `s` and a seed index, as in `s0`"))?;
        if step_part == "final" {
            return match rest {
                ["latents"] => Ok(Self::Final { seed_idx }),
                _ => Err(fail("the only tensor after `final` is `latents`")),
            };
        }
        let step_idx = parse_index(step_part, "k")
            .ok_or_else(|| fail("the second part must be `final` or `k` and a step index, as in `k0`"))?;
        match rest {
            ["video"] => Ok(Self::Video { seed_idx, step_idx }),
            [kind] => StepTensor::from_name(kind)
                .map(|kind| Self::Step { seed_idx, step_idx, kind })
                .ok_or_else(|| fail("a step tensor must be `latents`, `velocity`, `x0` or `video`")),
            [layer, kind] => {
                let layer_idx = parse_index(layer, "layer").ok_or_else(|| {
                    fail("the third part must be `layer` and a layer index, as in `layer0`")
                })?;
                let kind = CaptureKind::from_name(kind).ok_or_else(|| {
                    fail("a capture must be `decoded`, `token_norm`, `pca3`, `self_attn` or `cross_attn`")
                })?;
                Ok(Self::Capture { seed_idx, step_idx, layer_idx, kind })
            }
            _ => Err(fail("expected 3 or 4 `/`-separated parts")),
        }
    }
}

/// Parses `{prefix}{index}` where the index is canonical decimal (no sign, no leading zeros).
fn parse_index(text: &str, prefix: &str) -> Option<usize> {
    let digits = text.strip_prefix(prefix)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_string_form() {
        let names = [
            TensorName::Step { seed_idx: 0, step_idx: 3, kind: StepTensor::X0 },
            TensorName::Step { seed_idx: 12, step_idx: 0, kind: StepTensor::Velocity },
            TensorName::Final { seed_idx: 1 },
            TensorName::Capture { seed_idx: 2, step_idx: 10, layer_idx: 7, kind: CaptureKind::CrossAttn },
            TensorName::Video { seed_idx: 1, step_idx: 4 },
        ];
        let strings =
            ["s0/k3/x0", "s12/k0/velocity", "s1/final/latents", "s2/k10/layer7/cross_attn", "s1/k4/video"];
        for (name, string) in names.iter().zip(strings) {
            assert_eq!(name.to_string(), string);
            assert_eq!(string.parse::<TensorName>(), Ok(*name));
        }
    }

    #[test]
    fn non_canonical_or_unknown_names_are_rejected() {
        for bad in [
            "",
            "s0",
            "s0/k1",
            "s01/k1/latents",
            "s0/k+1/latents",
            "s0/k1/noise",
            "s0/final/x0",
            "s0/k1/layer/decoded",
            "s0/k1/layer2/attention",
            "s0/k1/layer2/decoded/extra",
            "t0/k1/latents",
            "s0/k99999999999999999999999/latents",
        ] {
            assert!(bad.parse::<TensorName>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn file_order_groups_by_seed_then_step() {
        let mut names: Vec<TensorName> =
            ["s1/k0/latents", "s0/final/latents", "s0/k10/x0", "s0/k2/layer0/pca3", "s0/k2/x0"]
                .into_iter()
                .map(|name| name.parse().expect("valid"))
                .collect();
        names.sort();
        let sorted: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            ["s0/k2/x0", "s0/k2/layer0/pca3", "s0/k10/x0", "s0/final/latents", "s1/k0/latents"]
        );
    }
}
