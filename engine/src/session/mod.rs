//! A sampling run advanced one denoising step at a time.
//!
//! A [`SamplingSession`] owns the current latent and the solver state. Each [`step`] runs the
//! model (twice under classifier-free guidance), records what enters and leaves the step, and
//! advances the solver. Sessions fork ([`SamplingSession::fork_renoised`],
//! [`SamplingSession::fork_with_latents`]) and stop between steps when cancelled.
//!
//! Shapes: one sample at a time; latents, velocities and `x0_hat` are `[C, F, H, W]` in f32.
//!
//! [`step`]: SamplingSession::step
pub mod attention;
pub mod capture;
pub mod condition;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod inputs;
pub mod intervention;
pub mod noise;
pub mod reduce;
pub mod step_record;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Tensor};

pub use attention::AttentionMaps;
pub use capture::{CaptureKind, CaptureSpec, ResolvedCapture};
pub use condition::ConditionFrames;
pub use error::{Result, SessionError};
pub use inputs::{Conditioning, NoiseSource, SessionSettings};
pub use step_record::{LayerCapture, StepRecord};

use crate::model::{ForwardInput, TokenGrid, WanTransformer};
use crate::scheduler::Solver;

/// A shared flag that stops a session before its next step.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A run of the denoiser, one step at a time.
#[derive(Debug, Clone)]
pub struct SamplingSession {
    model: Arc<WanTransformer>,
    conditioning: Arc<Conditioning>,
    settings: SessionSettings,
    capture: ResolvedCapture,
    solver: Solver,
    /// Current `x_t`, `[1, C, F, H, W]`, f32 (condition frames already imposed).
    latents: Tensor,
    /// The clean condition frames, when the run has them.
    condition: Option<ConditionFrames>,
    grid: TokenGrid,
    cancel: CancelToken,
    /// Blocks skipped in every forward pass (an intervention; empty for a plain run).
    skip_layers: Vec<usize>,
    /// Wan2.2 A14B's two experts: `model` is whichever runs the current step.
    experts: Option<Experts>,
}

/// Two transformers that share the denoising (Wan2.2 A14B): the high-noise expert runs the
/// steps whose timestep is at least `boundary` (`boundary_ratio * 1000`), the low-noise one the
/// rest, as diffusers' `WanPipeline` switches them.
#[derive(Debug, Clone)]
pub struct Experts {
    pub high_noise: Arc<WanTransformer>,
    pub low_noise: Arc<WanTransformer>,
    pub boundary: f64,
}

impl SamplingSession {
    /// Starts a run of `latent_shape` `[C, F, H, W]` from `noise`.
    pub fn new(
        model: Arc<WanTransformer>,
        conditioning: Arc<Conditioning>,
        settings: SessionSettings,
        latent_shape: [usize; 4],
        noise: &NoiseSource,
    ) -> Result<Self> {
        let device = model.device().clone();
        let noise = match noise {
            NoiseSource::Seed(seed) => noise::gaussian_noise(*seed, latent_shape.to_vec(), &device)?,
            NoiseSource::Given(tensor) => {
                if tensor.dims() != latent_shape {
                    return Err(SessionError::Setup(format!(
                        "the noise has shape {:?}, the latent is {latent_shape:?}",
                        tensor.dims()
                    )));
                }
                tensor.to_dtype(DType::F32)?.to_device(&device)?
            }
        };
        let noise = noise.unsqueeze(0)?;
        let grid = model.grid(&noise)?;
        Self::check_conditioning(&model, &conditioning, &settings, latent_shape)?;
        let capture = settings.capture.resolve(model.num_layers(), grid.len())?;
        let solver = Solver::new(settings.scheduler, settings.steps, settings.shift)?;
        let condition = match &conditioning.condition_latent {
            Some(latent) => Some(ConditionFrames::new(latent, latent_shape, model.config().patch_size[0])?),
            None => None,
        };
        let mut session = Self {
            model,
            conditioning,
            settings,
            capture,
            solver,
            latents: noise,
            condition,
            grid,
            cancel: CancelToken::default(),
            skip_layers: Vec::new(),
            experts: None,
        };
        session.latents = session.impose_condition(&session.latents)?;
        Ok(session)
    }

    fn check_conditioning(
        model: &WanTransformer,
        conditioning: &Conditioning,
        settings: &SessionSettings,
        latent_shape: [usize; 4],
    ) -> Result<()> {
        let text_dim = model.config().text_dim;
        let check_embeds = |name: &str, t: &Tensor| match t.dims() {
            [1, len, width] if *len > 0 && *width == text_dim => Ok(()),
            dims => {
                Err(SessionError::Setup(format!("{name} have shape {dims:?}, expected [1, L, {text_dim}]")))
            }
        };
        check_embeds("prompt embeddings", &conditioning.prompt_embeds)?;
        if let Some(negative) = &conditioning.negative_prompt_embeds {
            check_embeds("negative prompt embeddings", negative)?;
        }
        if !settings.guidance_scale.is_finite() {
            return Err(SessionError::Setup(format!(
                "guidance scale {} is not finite",
                settings.guidance_scale
            )));
        }
        if settings.guidance_scale > 1.0 && conditioning.negative_prompt_embeds.is_none() {
            return Err(SessionError::Setup(format!(
                "guidance scale {} needs negative prompt embeddings",
                settings.guidance_scale
            )));
        }
        if let Some(condition) = &conditioning.condition_latent {
            let [c, f, h, w] = latent_shape;
            match condition.dims() {
                [cc, fc, hc, wc] if *cc == c && *hc == h && *wc == w && *fc > 0 && *fc < f => {}
                dims => {
                    return Err(SessionError::Setup(format!(
                        "the condition latent has shape {dims:?}; expected [{c}, F_c, {h}, {w}] with 0 < F_c < {f}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The index of the next step (equals the step count once finished).
    #[must_use]
    pub fn step_idx(&self) -> usize {
        self.solver.next_step_idx()
    }

    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.solver.is_finished()
    }

    #[must_use]
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    #[must_use]
    pub fn solver(&self) -> &Solver {
        &self.solver
    }

    #[must_use]
    pub fn model(&self) -> &Arc<WanTransformer> {
        &self.model
    }

    /// The session with Wan2.2 A14B's low-noise expert taking over below `boundary_ratio` of the
    /// training timesteps (the model given to [`Self::new`] being the high-noise expert). The two
    /// must share their latent and text widths and patch size.
    pub fn with_low_noise_expert(
        mut self,
        low_noise: Arc<WanTransformer>,
        boundary_ratio: f64,
    ) -> Result<Self> {
        let (high, low) = (self.model.config(), low_noise.config());
        let same = high.in_channels == low.in_channels
            && high.out_channels() == low.out_channels()
            && high.text_dim == low.text_dim
            && high.patch_size == low.patch_size;
        if !same {
            return Err(SessionError::Setup(
                "the two experts differ in their channels, text width or patch size".to_owned(),
            ));
        }
        if !(0.0..=1.0).contains(&boundary_ratio) {
            return Err(SessionError::Setup(format!("boundary_ratio {boundary_ratio} is outside [0, 1]")));
        }
        let high_noise = Arc::clone(&self.model);
        self.experts = Some(Experts { high_noise, low_noise, boundary: boundary_ratio * 1000.0 });
        Ok(self)
    }

    /// The transformer that runs a step of timestep `timestep`.
    #[must_use]
    pub fn model_for(&self, timestep: f64) -> &Arc<WanTransformer> {
        match &self.experts {
            Some(experts) if timestep < experts.boundary => &experts.low_noise,
            Some(experts) => &experts.high_noise,
            None => &self.model,
        }
    }

    #[must_use]
    pub fn capture(&self) -> &ResolvedCapture {
        &self.capture
    }

    #[must_use]
    pub fn grid(&self) -> TokenGrid {
        self.grid
    }

    /// The latent shape `[C, F, H, W]`.
    #[must_use]
    pub fn latent_shape(&self) -> [usize; 4] {
        let dims = self.latents.dims();
        [dims[1], dims[2], dims[3], dims[4]]
    }

    /// Whether steps run the model twice for classifier-free guidance.
    #[must_use]
    pub fn uses_guidance(&self) -> bool {
        self.conditioning.negative_prompt_embeds.is_some() && self.settings.guidance_scale > 1.0
    }

    /// Whether the first latent frames are a clean condition (TI2V).
    #[must_use]
    pub fn has_condition(&self) -> bool {
        self.condition.is_some()
    }

    /// The current latent `x_t` (the final result once finished), `[C, F, H, W]`.
    pub fn latents(&self) -> Result<Tensor> {
        Ok(self.latents.squeeze(0)?)
    }

    /// A token that cancels this session (and its clones made afterwards) before its next step.
    #[must_use]
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Takes the next denoising step and returns what it recorded.
    pub fn step(&mut self) -> Result<StepRecord> {
        let step_idx = self.solver.next_step_idx();
        if self.solver.is_finished() {
            return Err(SessionError::Finished { steps: self.settings.steps });
        }
        if self.cancel.is_cancelled() {
            return Err(SessionError::Cancelled { step_idx });
        }
        #[cfg(feature = "fault-injection")]
        fault::before_step(step_idx)?;
        let schedule = self.solver.schedule();
        let (sigma, timestep) = (schedule.sigmas[step_idx], schedule.timesteps[step_idx]);
        self.model = Arc::clone(self.model_for(timestep));
        let timesteps = self.timesteps_for(timestep)?;

        let probe = self.forward_probe(self.capture.probe());
        let text = &self.conditioning.prompt_embeds;
        let input = ForwardInput { latents: &self.latents, timesteps: &timesteps, text_embeds: text };
        let cond = self.model.forward(&input, &probe)?;
        let uncond = match &self.conditioning.negative_prompt_embeds {
            Some(negative) if self.uses_guidance() => {
                let input = ForwardInput { text_embeds: negative, ..input };
                // The per-layer clean-video predictions combine both passes, as the velocity does.
                let hidden_layers = self.capture.layers_with(CaptureKind::X0);
                let probe =
                    crate::model::ForwardProbe { hidden_layers, ..crate::model::ForwardProbe::default() };
                Some(self.model.forward(&input, &self.forward_probe(probe))?)
            }
            _ => None,
        };
        let velocity = self.guided(&cond.velocity, uncond.as_ref().map(|uncond| &uncond.velocity))?;
        let x0 = self.impose_condition(&(&self.latents - (&velocity * sigma)?)?)?;
        for (tensor, name) in [(&velocity, "velocity"), (&x0, "x0 prediction")] {
            let count = non_finite_count(tensor)?;
            if count > 0 {
                let first_layer = first_non_finite_layer(&cond)?;
                return Err(SessionError::NonFinite { step_idx, tensor: name, count, first_layer });
            }
        }
        let layers = self.reduce_captures(&cond, uncond.as_ref(), sigma)?;

        let next = self.solver.step(step_idx, &velocity, &self.latents)?;
        let record = StepRecord {
            step_idx,
            sigma,
            timestep,
            latents: self.latents.squeeze(0)?,
            velocity: velocity.squeeze(0)?,
            x0: x0.squeeze(0)?,
            layers,
        };
        self.latents = self.impose_condition(&next)?;
        Ok(record)
    }

    /// Copies this session at its current step and replaces the latent by
    /// `(1 - sigma_k) * x0_hat + sigma_k * eps`, with fresh noise `eps` from `seed` and `x0_hat`
    /// the previous step's prediction (`last_x0`, `[C, F, H, W]`). At step 0 this is plain new
    /// noise. The solver's history is kept.
    pub fn fork_renoised(&self, last_x0: Option<&Tensor>, seed: u64) -> Result<Self> {
        let sigma = self.current_sigma()?;
        let eps = noise::gaussian_noise(seed, self.latents.dims().to_vec(), self.model.device())?;
        let latents = if self.step_idx() == 0 {
            eps
        } else {
            let x0 = last_x0.ok_or_else(|| {
                SessionError::Setup(
                    "re-noising after step 0 needs the previous step's x0 prediction".to_owned(),
                )
            })?;
            ((x0.unsqueeze(0)? * (1.0 - sigma))? + (eps * sigma)?)?
        };
        self.fork_with_latents(&latents.squeeze(0)?)
    }

    /// Copies this session at its current step with the latent replaced by `latents`
    /// `[C, F, H, W]` (e.g. an edited `x_t`). Condition frames are re-imposed.
    pub fn fork_with_latents(&self, latents: &Tensor) -> Result<Self> {
        let expected = &self.latents.dims()[1..];
        if latents.dims() != expected {
            return Err(SessionError::Setup(format!(
                "the edited latent has shape {:?}, the run's is {expected:?}",
                latents.dims()
            )));
        }
        let mut fork = self.clone();
        fork.cancel = CancelToken::default();
        fork.latents = fork.impose_condition(&latents.to_dtype(DType::F32)?.unsqueeze(0)?)?;
        Ok(fork)
    }

    fn current_sigma(&self) -> Result<f64> {
        let step_idx = self.step_idx();
        if self.is_finished() {
            return Err(SessionError::Finished { steps: self.settings.steps });
        }
        Ok(self.solver.schedule().sigmas[step_idx])
    }

    /// The model's timesteps for this step: `[1]`, or `[1, N]` with 0 on condition tokens.
    fn timesteps_for(&self, timestep: f64) -> Result<Tensor> {
        match &self.condition {
            Some(condition) => {
                condition.token_timesteps(timestep, self.grid, self.model.config().patch_size[0])
            }
            None => Ok(Tensor::new(&[timestep as f32], self.model.device())?),
        }
    }

    /// Puts the clean condition back on its frames (identity without a condition).
    fn impose_condition(&self, latents: &Tensor) -> Result<Tensor> {
        match &self.condition {
            Some(condition) => condition.impose(latents),
            None => Ok(latents.clone()),
        }
    }

    /// The velocity the sampler steps with: `cond`, or with guidance
    /// `uncond + scale * (cond - uncond)`.
    fn guided(&self, cond: &Tensor, uncond: Option<&Tensor>) -> Result<Tensor> {
        Ok(match uncond {
            Some(uncond) => (uncond + ((cond - uncond)? * self.settings.guidance_scale)?)?,
            None => cond.clone(),
        })
    }

    /// Layer `trace`'s clean-video prediction `x_t - sigma * v_l` `[C, F, H, W]`, with `v_l` the
    /// head applied to the block's output in the conditional pass `out`, guided with the same
    /// layer of the unconditional pass `uncond` when there is one.
    fn layer_x0(
        &self,
        trace: &crate::model::LayerTrace,
        (out, uncond): (&crate::model::ForwardOutput, Option<&crate::model::ForwardOutput>),
        sigma: f64,
    ) -> Result<Tensor> {
        let cond_velocity = self.model.head(hidden_of(trace)?, &out.temb, out.grid)?;
        let uncond_velocity = match uncond {
            Some(uncond) => {
                let Some(uncond_trace) = uncond.layers.iter().find(|t| t.layer_idx == trace.layer_idx) else {
                    return Err(SessionError::Capture(format!(
                        "layer {} was not probed in the unconditional pass",
                        trace.layer_idx
                    )));
                };
                Some(self.model.head(hidden_of(uncond_trace)?, &uncond.temb, uncond.grid)?)
            }
            None => None,
        };
        let velocity = self.guided(&cond_velocity, uncond_velocity.as_ref())?;
        Ok(self.impose_condition(&(&self.latents - (&velocity * sigma)?)?)?.squeeze(0)?)
    }

    fn reduce_captures(
        &self,
        out: &crate::model::ForwardOutput,
        uncond: Option<&crate::model::ForwardOutput>,
        sigma: f64,
    ) -> Result<Vec<LayerCapture>> {
        let mut captures = Vec::with_capacity(out.layers.len());
        for trace in &out.layers {
            let mut tensors = Vec::new();
            for &kind in self.capture.kinds_at(trace.layer_idx) {
                let tensor = match kind {
                    CaptureKind::X0 => self.layer_x0(trace, (out, uncond), sigma)?,
                    CaptureKind::Decoded => {
                        let hidden = hidden_of(trace)?;
                        self.model.head(hidden, &out.temb, out.grid)?.squeeze(0)?
                    }
                    CaptureKind::TokenNorm => reduce::token_norms(hidden_of(trace)?, out.grid)?,
                    CaptureKind::Pca3 => reduce::pca3(hidden_of(trace)?, out.grid)?,
                    CaptureKind::SelfAttn => probs_of(trace.self_attn_probs.as_ref(), trace.layer_idx)?,
                    CaptureKind::CrossAttn => probs_of(trace.cross_attn_probs.as_ref(), trace.layer_idx)?,
                    CaptureKind::Hidden => reduce::channels_first(hidden_of(trace)?, out.grid)?,
                };
                tensors.push((kind, tensor));
            }
            captures.push(LayerCapture { layer_idx: trace.layer_idx, tensors });
        }
        Ok(captures)
    }
}

fn hidden_of(trace: &crate::model::LayerTrace) -> Result<&Tensor> {
    trace.hidden.as_ref().ok_or_else(|| {
        SessionError::Capture(format!("layer {} was not probed for its output", trace.layer_idx))
    })
}

fn probs_of(probs: Option<&Tensor>, layer_idx: usize) -> Result<Tensor> {
    let probs = probs
        .ok_or_else(|| SessionError::Capture(format!("layer {layer_idx} was not probed for attention")))?;
    Ok(probs.squeeze(0)?)
}

/// How many of `tensor`'s values are NaN or infinite: zero at the cost of one multiplication and
/// one sum (`0 * x` is 0 for every finite `x` and NaN otherwise, so the sum is 0 exactly when all
/// are finite); counted one by one only when some are not.
fn non_finite_count(tensor: &Tensor) -> Result<usize> {
    let zeros_if_finite = (tensor * 0.0)?;
    let total = zeros_if_finite.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    if total == 0.0 {
        return Ok(0);
    }
    let values = tensor.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    Ok(values.iter().filter(|value| !value.is_finite()).count())
}

/// The first block (of those whose output the pass kept) whose output holds a non-finite value.
fn first_non_finite_layer(output: &crate::model::ForwardOutput) -> Result<Option<usize>> {
    for trace in &output.layers {
        if let Some(hidden) = &trace.hidden
            && non_finite_count(hidden)? > 0
        {
            return Ok(Some(trace.layer_idx));
        }
    }
    Ok(None)
}
