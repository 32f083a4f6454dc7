//! The manifest: the JSON document in the safetensors header that says what a trajectory file
//! holds (model, conditioning, schedule, seeds, steps, captures).
//!
//! Every struct here denies unknown fields: within one format version the layout is closed, so a
//! misspelt or stray field is reported instead of silently ignored. Adding a field is therefore a
//! format-version bump (see `TRAJECTORY_FORMAT.md`, "Versions").

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::TrajectoryError;
use super::names::{CaptureKind, StepTensor, TensorName};
pub use crate::scheduler::SchedulerKind;

/// The training timesteps of Wan's flow-matching schedulers: a step's timestep is this times its
/// sigma.
const NUM_TRAIN_TIMESTEPS: f64 = 1000.0;
/// How far a stored timestep may be from `1000 * sigma`: UniPC stores it truncated to a whole
/// number (so up to 1 below), Euler as is.
const TIMESTEP_TOLERANCE: f64 = 1.0;
/// The manifest of a trajectory file, format version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The format version the file follows; [`super::FORMAT_VERSION`] for files written now.
    pub format_version: u32,
    /// The program that wrote the file, with its version, e.g. `"stepscope-engine 0.1.0"`.
    pub created_by: String,
    /// The model that produced the trajectory.
    pub model: ModelInfo,
    /// What the model was conditioned on.
    pub conditioning: Conditioning,
    /// The noise schedule the sampler followed.
    pub schedule: Schedule,
    /// Shape of one sample's latents, `[C, F, H, W]`.
    pub latent_shape: [usize; 4],
    /// The transformer's patch size `[p_t, p_h, p_w]`; each must divide the matching latent
    /// dimension, which gives the token grid `[F / p_t, H / p_h, W / p_w]`.
    pub patch_size: [usize; 3],
    /// Which per-step tensors every recorded step holds, without repeats.
    pub step_tensors: Vec<StepTensor>,
    /// One record per seed; the position in this list is the seed index used in tensor names.
    pub seeds: Vec<SeedRecord>,
    /// What was captured inside the transformer at each seed's capture steps.
    pub captures: Captures,
    /// The decoded videos' shape and decoder, when some steps' `x0` is stored decoded to pixels
    /// (absent: none; see [`SeedRecord::video_steps`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoInfo>,
}

/// What the `s{seed}/k{step}/video` tensors hold: `x0` decoded to RGB by a VAE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoInfo {
    /// `[3, F_v, H_v, W_v]` of every video tensor (values in `[-1, 1]`).
    pub shape: [usize; 4],
    /// What decoded them, e.g. `"AutoencoderKLWan"`.
    pub decoder: String,
}

/// The model that produced a trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// Where the weights came from: a path or a hub name.
    pub source: String,
    /// The model's diffusers `config.json`, verbatim (an empty object when unknown).
    pub config: Map<String, Value>,
    /// The dtype the model computed in, e.g. `"f32"` or `"bf16"`.
    pub dtype: String,
}

/// What the model was conditioned on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditioning {
    /// The prompt text, when the run started from one.
    pub prompt: Option<String>,
    /// Where the prompt embeddings came from, e.g. `"umt5-xxl"` or `"file:embeds.safetensors"`.
    pub prompt_embeddings: String,
    /// Classifier-free guidance scale (1 means no guidance).
    pub guidance_scale: f64,
    /// Whether a negative prompt was used for guidance.
    pub negative_prompt: bool,
    /// Whether the first latent frame was a clean condition frame (image-to-video).
    pub condition_frame: bool,
    /// The built-in task instance the run solves, if any.
    pub task: Option<TaskInfo>,
}

/// A built-in task instance (a maze, a puzzle, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInfo {
    /// The task's name, e.g. `"maze"`.
    pub name: String,
    /// The seed that generated the instance.
    pub seed: u64,
    /// The task's own parameters (e.g. `{"cells": 5}`).
    pub params: Map<String, Value>,
}

/// The sampler and its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The solver.
    pub scheduler: SchedulerKind,
    /// Number of denoising steps.
    pub steps: usize,
    /// The schedule shift (`sigma' = shift * sigma / (1 + (shift - 1) * sigma)`).
    pub shift: f64,
    /// The shifted noise levels, `steps + 1` of them; step `k` goes from `sigmas[k]` to
    /// `sigmas[k + 1]`.
    pub sigmas: Vec<f64>,
    /// The model timestep at each step (`sigma * 1000`), `steps` of them.
    pub timesteps: Vec<f64>,
}

/// One seed's part of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRecord {
    /// Where the initial noise came from.
    pub noise: NoiseSource,
    /// The seed and step this one branched from, when it was forked from another seed.
    pub forked_from: Option<ForkPoint>,
    /// How a fork was altered at its branch step, beyond fresh noise (absent: not altered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<Intervention>,
    /// The steps whose [`Manifest::step_tensors`] are stored, strictly increasing.
    pub steps: Vec<usize>,
    /// The steps at which captures were taken, strictly increasing, a subset of `steps`.
    pub capture_steps: Vec<usize>,
    /// Whether the latents after the last step (`s{seed}/final/latents`) are stored.
    pub final_latents: bool,
    /// The steps whose `x0` is also stored decoded to pixels (`s{seed}/k{step}/video`),
    /// strictly increasing, a subset of `steps` (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub video_steps: Vec<usize>,
}

/// Where a seed's initial noise came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSource {
    /// Drawn from the engine's RNG with this seed: `{"rng_seed": 42}`.
    RngSeed(u64),
    /// Supplied from outside (an imported run, a fork): `"given"`.
    Given,
}

/// Where a forked seed branched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkPoint {
    /// The seed it was forked from, an earlier entry of [`Manifest::seeds`].
    pub seed_index: usize,
    /// The step whose input latents it shares with that seed.
    pub step: usize,
}

/// How a forked seed departs from its parent at the branch step `k` (its `forked_from.step`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Intervention {
    /// The parent's `x0_hat` of step `k - 1` painted at `pixels` (`[frame, y, x]` of the
    /// latent) with `value` (one number per latent channel), the noise in the latent kept:
    /// `x_t' = x_t + (1 - sigma_k) (x0' - x0)`.
    PaintX0 { pixels: Vec<[usize; 3]>, value: Vec<f32> },
    /// These transformer blocks skipped (output = input, adding nothing to the residual stream)
    /// from step `k` on.
    SkipLayers { layers: Vec<usize> },
    /// The training-free seed ensemble: one member per noise seed in `rng_seeds` (2 to 64),
    /// each re-noised from the parent's state entering step `k` (plain noise at `k = 0`);
    /// after each of the `merge_steps` steps from `k` every member's latent is replaced by the
    /// members' mean; then the first member goes on alone. The seed records the first member.
    Ensemble { rng_seeds: Vec<u64>, merge_steps: usize },
}

/// The most members a seed ensemble may have.
pub const MAX_ENSEMBLE_MEMBERS: usize = 64;

/// What was captured inside the transformer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Captures {
    /// The transformer blocks captured, strictly increasing.
    pub layers: Vec<usize>,
    /// The kinds captured at each of those layers, without repeats.
    pub kinds: Vec<CaptureKind>,
    /// The query tokens of the attention captures: flat indices into the `[F', H', W']` token
    /// grid, row-major. Must be non-empty when an attention kind is captured.
    pub query_tokens: Vec<usize>,
}

/// A shape with some dimensions left free (`None`), for attention maps whose head count and
/// text length the manifest does not fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShapePattern(Vec<Option<usize>>);

impl ShapePattern {
    fn exact(dims: &[usize]) -> Self {
        Self(dims.iter().copied().map(Some).collect())
    }

    /// Whether `dims` has this pattern's rank and agrees on every fixed dimension.
    pub(crate) fn matches(&self, dims: &[usize]) -> bool {
        self.0.len() == dims.len()
            && self.0.iter().zip(dims).all(|(want, &got)| want.is_none_or(|w| w == got))
    }
}

impl std::fmt::Display for ShapePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match dim {
                Some(dim) => write!(f, "{dim}")?,
                None => f.write_str("any")?,
            }
        }
        f.write_str("]")
    }
}

/// How a set of tensors disagrees with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TensorSetMismatch {
    /// The manifest does not explain this tensor.
    Unexpected(TensorName),
    /// The manifest promises this tensor but the set lacks it.
    Missing(TensorName),
    /// The tensor's shape is not the one the manifest implies.
    WrongShape { name: TensorName, expected: ShapePattern, found: Vec<usize> },
}

impl TensorSetMismatch {
    /// The error for this mismatch in the file at `path`.
    pub(crate) fn into_error(self, path: &Path) -> TrajectoryError {
        let path = path.to_owned();
        match self {
            Self::Unexpected(name) => TrajectoryError::UnexpectedTensor { path, tensor: name.to_string() },
            Self::Missing(name) => TrajectoryError::MissingTensor { path, tensor: name.to_string() },
            Self::WrongShape { name, expected, found } => TrajectoryError::WrongShape {
                path,
                tensor: name.to_string(),
                expected: expected.to_string(),
                found,
            },
        }
    }
}

impl Manifest {
    /// The seed whose tensors hold seed `seed_idx`'s state at step `step_idx`: the seed itself,
    /// or, for a step before a fork's branch point, the seed it forked from (forks share the
    /// steps before it). `None` when no seed recorded that step.
    #[must_use]
    pub fn step_owner(&self, seed_idx: usize, step_idx: usize) -> Option<usize> {
        self.owner(seed_idx, step_idx, |seed| &seed.steps)
    }

    /// Like [`step_owner`](Self::step_owner), for the steps with a decoded video.
    #[must_use]
    pub fn video_owner(&self, seed_idx: usize, step_idx: usize) -> Option<usize> {
        self.owner(seed_idx, step_idx, |seed| &seed.video_steps)
    }

    /// Like [`step_owner`](Self::step_owner), for the steps with layer captures.
    #[must_use]
    pub fn capture_owner(&self, seed_idx: usize, step_idx: usize) -> Option<usize> {
        self.owner(seed_idx, step_idx, |seed| &seed.capture_steps)
    }

    fn owner(
        &self,
        seed_idx: usize,
        step_idx: usize,
        steps: impl Fn(&SeedRecord) -> &[usize],
    ) -> Option<usize> {
        let mut owner_idx = seed_idx;
        // Each hop goes to an earlier seed, so this ends within `seeds.len()` hops.
        for _ in 0..=self.seeds.len() {
            let seed = self.seeds.get(owner_idx)?;
            match seed.forked_from {
                Some(fork) if step_idx < fork.step && fork.seed_index < owner_idx => {
                    owner_idx = fork.seed_index;
                }
                _ => return steps(seed).contains(&step_idx).then_some(owner_idx),
            }
        }
        None
    }

    /// The token grid `[F', H', W']`: the latent shape divided by the patch size.
    #[must_use]
    pub fn token_grid(&self) -> [usize; 3] {
        let [_, frames, height, width] = self.latent_shape;
        let [p_t, p_h, p_w] = self.patch_size;
        [frames / p_t.max(1), height / p_h.max(1), width / p_w.max(1)]
    }

    /// Number of tokens in the token grid, `F' * H' * W'` (saturating; a validated manifest
    /// never saturates).
    #[must_use]
    pub fn token_count(&self) -> usize {
        self.token_grid().iter().fold(1, |count, &dim| count.saturating_mul(dim))
    }

    /// Checks everything the manifest says about itself; the error is a sentence naming the
    /// offending field.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.check_schedule()?;
        self.check_shapes()?;
        self.check_model_config()?;
        if let Some(kind) = first_repeat(&self.step_tensors) {
            return Err(format!("`step_tensors` lists `{kind}` twice"));
        }
        if self.seeds.is_empty() {
            return Err("`seeds` is empty: a trajectory holds at least one seed".to_owned());
        }
        for (seed_idx, seed) in self.seeds.iter().enumerate() {
            self.check_seed(seed_idx, seed)?;
        }
        self.check_video()?;
        self.check_captures()
    }

    fn check_video(&self) -> Result<(), String> {
        if let Some(video) = &self.video {
            let shape = video.shape;
            if shape[0] != 3 || shape.contains(&0) {
                return Err(format!(
                    "`video.shape` {shape:?} is not an RGB video [3, F, H, W] without a zero dimension"
                ));
            }
            let bytes = shape.iter().try_fold(size_of::<f32>(), |count, &dim| count.checked_mul(dim));
            if bytes.is_none() {
                return Err(format!("`video.shape` {shape:?} is too large to address"));
            }
        }
        for (seed_idx, seed) in self.seeds.iter().enumerate() {
            if seed.video_steps.is_empty() {
                continue;
            }
            if self.video.is_none() {
                return Err(format!(
                    "`seeds[{seed_idx}].video_steps` is set, but the manifest has no `video`"
                ));
            }
            if !is_strictly_increasing(&seed.video_steps) {
                return Err(format!("`seeds[{seed_idx}].video_steps` is not strictly increasing"));
            }
            if let Some(step) = seed.video_steps.iter().find(|step| seed.steps.binary_search(step).is_err()) {
                return Err(format!(
                    "`seeds[{seed_idx}].video_steps` holds step {step}, which is not one of its recorded `steps`"
                ));
            }
        }
        Ok(())
    }

    fn check_schedule(&self) -> Result<(), String> {
        let schedule = &self.schedule;
        if schedule.steps == 0 {
            return Err("`schedule.steps` is 0".to_owned());
        }
        if schedule.steps.checked_add(1) != Some(schedule.sigmas.len()) {
            return Err(format!(
                "`schedule.sigmas` has {} values but {} steps need steps + 1",
                schedule.sigmas.len(),
                schedule.steps
            ));
        }
        if schedule.timesteps.len() != schedule.steps {
            return Err(format!(
                "`schedule.timesteps` has {} values but there are {} steps",
                schedule.timesteps.len(),
                schedule.steps
            ));
        }
        let finite = [
            ("schedule.shift", schedule.shift),
            ("conditioning.guidance_scale", self.conditioning.guidance_scale),
        ]
        .into_iter()
        .chain(schedule.sigmas.iter().map(|&sigma| ("schedule.sigmas", sigma)))
        .chain(schedule.timesteps.iter().map(|&timestep| ("schedule.timesteps", timestep)));
        for (field, value) in finite {
            if !value.is_finite() {
                return Err(format!("`{field}` holds {value}, which is not a finite number"));
            }
        }
        Self::check_sigmas(&schedule.sigmas, &schedule.timesteps)
    }

    /// A flow-matching schedule: noise levels in `[0, 1]`, never rising, ending at 0, and each
    /// timestep the scheduler's `1000 * sigma` (UniPC truncates it to a whole number, so within
    /// [`TIMESTEP_TOLERANCE`]).
    fn check_sigmas(sigmas: &[f64], timesteps: &[f64]) -> Result<(), String> {
        if let Some((step, sigma)) =
            sigmas.iter().enumerate().find(|(_, sigma)| !(0.0..=1.0).contains(*sigma))
        {
            return Err(format!("`schedule.sigmas[{step}]` is {sigma}, outside [0, 1]"));
        }
        if let Some(step) = sigmas.windows(2).position(|pair| pair[1] > pair[0]) {
            return Err(format!(
                "`schedule.sigmas` rises from {} at step {step} to {} at step {}: a schedule only removes noise",
                sigmas[step],
                sigmas[step + 1],
                step + 1
            ));
        }
        if let Some(&last) = sigmas.last()
            && last != 0.0
        {
            return Err(format!("`schedule.sigmas` ends at {last}, not 0"));
        }
        for (step, (&timestep, &sigma)) in timesteps.iter().zip(sigmas).enumerate() {
            if (timestep - NUM_TRAIN_TIMESTEPS * sigma).abs() > TIMESTEP_TOLERANCE {
                return Err(format!(
                    "`schedule.timesteps[{step}]` is {timestep}, but sigma {sigma} gives {}",
                    NUM_TRAIN_TIMESTEPS * sigma
                ));
            }
        }
        Ok(())
    }

    /// Where the model's config names them, its output channels and patch size must be the
    /// latents' and the manifest's, and its blocks must include every captured one.
    fn check_model_config(&self) -> Result<(), String> {
        let config = &self.model.config;
        let number =
            |key: &str| config.get(key).and_then(Value::as_u64).and_then(|value| usize::try_from(value).ok());
        let channels = number("out_channels").or_else(|| number("in_channels"));
        if let Some(channels) = channels
            && channels != self.latent_shape[0]
        {
            return Err(format!(
                "`model.config` gives the model {channels} output channels but `latent_shape` has {}",
                self.latent_shape[0]
            ));
        }
        if let Some(patch) = config.get("patch_size").and_then(Value::as_array) {
            let patch: Vec<Option<u64>> = patch.iter().map(Value::as_u64).collect();
            let expected: Vec<Option<u64>> = self.patch_size.iter().map(|&p| Some(p as u64)).collect();
            if patch != expected {
                return Err(format!(
                    "`model.config.patch_size` is {:?} but `patch_size` is {:?}",
                    config.get("patch_size"),
                    self.patch_size
                ));
            }
        }
        if let (Some(layers), Some(&last)) = (number("num_layers"), self.captures.layers.last())
            && last >= layers
        {
            return Err(format!("`captures.layers` includes block {last} but the model has {layers} blocks"));
        }
        Ok(())
    }

    fn check_shapes(&self) -> Result<(), String> {
        if self.latent_shape.contains(&0) {
            return Err(format!("`latent_shape` {:?} has a zero dimension", self.latent_shape));
        }
        let element_count = self.latent_shape.iter().try_fold(1_usize, |count, &dim| count.checked_mul(dim));
        if element_count.and_then(|count| count.checked_mul(size_of::<f32>())).is_none() {
            return Err(format!("`latent_shape` {:?} is too large to address", self.latent_shape));
        }
        let [_, frames, height, width] = self.latent_shape;
        for (axis, dim, patch) in [("frames", frames, 0), ("height", height, 1), ("width", width, 2)] {
            let patch_dim = self.patch_size[patch];
            if patch_dim == 0 || dim % patch_dim != 0 {
                return Err(format!(
                    "`patch_size` {:?} does not divide the latent {axis} {dim}",
                    self.patch_size
                ));
            }
        }
        Ok(())
    }

    fn check_seed(&self, seed_idx: usize, seed: &SeedRecord) -> Result<(), String> {
        let steps = self.schedule.steps;
        if !is_strictly_increasing(&seed.steps) {
            return Err(format!("`seeds[{seed_idx}].steps` is not strictly increasing"));
        }
        if let Some(&step) = seed.steps.iter().find(|&&step| step >= steps) {
            return Err(format!(
                "`seeds[{seed_idx}].steps` holds step {step} but the schedule has {steps} steps"
            ));
        }
        if !is_strictly_increasing(&seed.capture_steps) {
            return Err(format!("`seeds[{seed_idx}].capture_steps` is not strictly increasing"));
        }
        if let Some(step) = seed.capture_steps.iter().find(|step| seed.steps.binary_search(step).is_err()) {
            return Err(format!(
                "`seeds[{seed_idx}].capture_steps` holds step {step}, which is not one of its recorded `steps`"
            ));
        }
        if seed.intervention.is_some() && seed.forked_from.is_none() {
            return Err(format!("`seeds[{seed_idx}].intervention` is set, but the seed is not a fork"));
        }
        if let Some(Intervention::PaintX0 { pixels, value }) = &seed.intervention {
            let [_, frames, height, width] = self.latent_shape;
            let extent = [frames, height, width];
            if let Some(pixel) = pixels.iter().find(|p| p.iter().zip(extent).any(|(&i, n)| i >= n)) {
                return Err(format!(
                    "`seeds[{seed_idx}].intervention` paints pixel {pixel:?}, outside the {extent:?} latent frames"
                ));
            }
            if value.len() != self.latent_shape[0] {
                return Err(format!(
                    "`seeds[{seed_idx}].intervention` paints {} channel values; the latent has {} channels",
                    value.len(),
                    self.latent_shape[0]
                ));
            }
        }
        if let Some(Intervention::Ensemble { rng_seeds, merge_steps }) = &seed.intervention
            && (!(2..=MAX_ENSEMBLE_MEMBERS).contains(&rng_seeds.len()) || *merge_steps == 0)
        {
            return Err(format!(
                "`seeds[{seed_idx}].intervention` is an ensemble of {} members over {merge_steps} steps; \
                 it takes 2 to {MAX_ENSEMBLE_MEMBERS} members and at least one step",
                rng_seeds.len()
            ));
        }
        if let Some(fork) = seed.forked_from {
            if fork.seed_index >= seed_idx {
                return Err(format!(
                    "`seeds[{seed_idx}].forked_from.seed_index` is {}, but a seed can only fork from an earlier one",
                    fork.seed_index
                ));
            }
            if fork.step > steps {
                return Err(format!(
                    "`seeds[{seed_idx}].forked_from.step` is {} but the schedule has {steps} steps",
                    fork.step
                ));
            }
        }
        Ok(())
    }

    fn check_captures(&self) -> Result<(), String> {
        let captures = &self.captures;
        if !is_strictly_increasing(&captures.layers) {
            return Err("`captures.layers` is not strictly increasing".to_owned());
        }
        if let Some(kind) = first_repeat(&captures.kinds) {
            return Err(format!("`captures.kinds` lists `{kind}` twice"));
        }
        let token_count = self.token_count();
        if let Some(token) = captures.query_tokens.iter().find(|&&token| token >= token_count) {
            return Err(format!(
                "`captures.query_tokens` holds token {token} but the token grid has {token_count} tokens"
            ));
        }
        if captures.kinds.iter().any(|kind| kind.is_attention()) && captures.query_tokens.is_empty() {
            return Err("attention is captured but `captures.query_tokens` is empty".to_owned());
        }
        Ok(())
    }

    /// The shape the tensor `name` must have. Assumes a checked manifest.
    pub(crate) fn expected_shape(&self, name: &TensorName) -> ShapePattern {
        let [tok_f, tok_h, tok_w] = self.token_grid();
        let queries = Some(self.captures.query_tokens.len());
        match *name {
            TensorName::Step { .. }
            | TensorName::Final { .. }
            | TensorName::Capture { kind: CaptureKind::Decoded | CaptureKind::X0, .. } => {
                ShapePattern::exact(&self.latent_shape)
            }
            TensorName::Capture { kind: CaptureKind::TokenNorm, .. } => {
                ShapePattern::exact(&[tok_f, tok_h, tok_w])
            }
            TensorName::Capture { kind: CaptureKind::Pca3, .. } => {
                ShapePattern::exact(&[3, tok_f, tok_h, tok_w])
            }
            TensorName::Capture { kind: CaptureKind::SelfAttn, .. } => {
                ShapePattern(vec![None, queries, Some(self.token_count())])
            }
            TensorName::Capture { kind: CaptureKind::CrossAttn, .. } => {
                ShapePattern(vec![None, queries, None])
            }
            TensorName::Capture { kind: CaptureKind::Hidden, .. } => {
                ShapePattern(vec![None, Some(tok_f), Some(tok_h), Some(tok_w)])
            }
            TensorName::Video { .. } => match &self.video {
                Some(video) => ShapePattern::exact(&video.shape),
                // Never promised without `video`; no shape matches.
                None => ShapePattern(Vec::new()),
            },
        }
    }

    /// Whether the manifest promises the tensor `name`.
    pub(crate) fn promises(&self, name: &TensorName) -> bool {
        let Some(seed) = self.seeds.get(name.seed_idx()) else {
            return false;
        };
        match *name {
            TensorName::Step { step_idx, kind, .. } => {
                self.step_tensors.contains(&kind) && seed.steps.binary_search(&step_idx).is_ok()
            }
            TensorName::Final { .. } => seed.final_latents,
            TensorName::Capture { step_idx, layer_idx, kind, .. } => {
                self.captures.kinds.contains(&kind)
                    && self.captures.layers.binary_search(&layer_idx).is_ok()
                    && seed.capture_steps.binary_search(&step_idx).is_ok()
            }
            TensorName::Video { step_idx, .. } => {
                self.video.is_some() && seed.video_steps.binary_search(&step_idx).is_ok()
            }
        }
    }

    /// How many tensors the manifest promises, or `None` when the count overflows `usize`
    /// (then no file can hold them all). Assumes a checked manifest (no repeats in any list).
    pub(crate) fn promised_count(&self) -> Option<usize> {
        let per_capture_step = self.captures.layers.len().checked_mul(self.captures.kinds.len())?;
        self.seeds.iter().try_fold(0_usize, |total, seed| {
            let step_count = seed.steps.len().checked_mul(self.step_tensors.len())?;
            let capture_count = seed.capture_steps.len().checked_mul(per_capture_step)?;
            total
                .checked_add(step_count)?
                .checked_add(capture_count)?
                .checked_add(seed.video_steps.len())?
                .checked_add(usize::from(seed.final_latents))
        })
    }

    /// Every promised tensor name, lazily, in file order. The count can be astronomically large
    /// for a hostile manifest, so callers stop early instead of collecting.
    pub(crate) fn promised_names(&self) -> impl Iterator<Item = TensorName> + '_ {
        self.seeds.iter().enumerate().flat_map(move |(seed_idx, seed)| {
            let per_step = seed.steps.iter().flat_map(move |&step_idx| {
                let step_tensors = StepTensor::ALL
                    .into_iter()
                    .filter(|kind| self.step_tensors.contains(kind))
                    .map(move |kind| TensorName::Step { seed_idx, step_idx, kind });
                let video = seed
                    .video_steps
                    .binary_search(&step_idx)
                    .is_ok()
                    .then_some(TensorName::Video { seed_idx, step_idx });
                let captures = seed
                    .capture_steps
                    .binary_search(&step_idx)
                    .is_ok()
                    .then(|| {
                        self.captures.layers.iter().flat_map(move |&layer_idx| {
                            CaptureKind::ALL
                                .into_iter()
                                .filter(|kind| self.captures.kinds.contains(kind))
                                .map(move |kind| TensorName::Capture { seed_idx, step_idx, layer_idx, kind })
                        })
                    })
                    .into_iter()
                    .flatten();
                step_tensors.chain(video).chain(captures)
            });
            per_step.chain(seed.final_latents.then_some(TensorName::Final { seed_idx }))
        })
    }

    /// Checks that the tensors `(name, shape)` are exactly the ones the manifest promises, each
    /// with the right shape. `tensors` must not repeat a name. Assumes a checked manifest.
    ///
    /// Never materialises the promised set: each present tensor is looked up in the manifest,
    /// and only when the counts differ are promised names walked until the first missing one
    /// (at most `present + 1` of them).
    pub(crate) fn check_tensor_set<'a>(
        &self,
        tensors: impl ExactSizeIterator<Item = (&'a TensorName, &'a [usize])>,
        contains: impl Fn(&TensorName) -> bool,
    ) -> Result<(), TensorSetMismatch> {
        let present_count = tensors.len();
        for (name, shape) in tensors {
            if !self.promises(name) {
                return Err(TensorSetMismatch::Unexpected(*name));
            }
            let expected = self.expected_shape(name);
            if !expected.matches(shape) {
                return Err(TensorSetMismatch::WrongShape { name: *name, expected, found: shape.to_vec() });
            }
        }
        if self.promised_count() == Some(present_count) {
            return Ok(());
        }
        match self.promised_names().find(|name| !contains(name)) {
            Some(missing) => Err(TensorSetMismatch::Missing(missing)),
            // Unreachable when the caller's `tensors` and `contains` agree; treat it as a pass
            // rather than inventing a missing name.
            None => Ok(()),
        }
    }
}

fn is_strictly_increasing(values: &[usize]) -> bool {
    values.windows(2).all(|pair| pair[0] < pair[1])
}

fn first_repeat<T: PartialEq + Copy>(values: &[T]) -> Option<T> {
    values.iter().enumerate().find(|&(i, value)| values[..i].contains(value)).map(|(_, &value)| value)
}
