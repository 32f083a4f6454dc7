//! Flow-matching schedules and solvers (Euler, UniPC), step for step as diffusers runs them for Wan.
//!
//! Flow matching as Wan uses it: `x_t = (1 - sigma) * x0 + sigma * eps` and the model predicts the
//! velocity `v = eps - x0`, so the predicted clean sample is `x0_hat = x_t - sigma * v`
//! ([`predict_x0`]).
//!
//! - [`Schedule`]: the noise levels (sigmas) and model timesteps of a run, computed with diffusers'
//!   arithmetic and roundings, so that a run here and one in diffusers condition the model on the
//!   same timesteps.
//! - [`Solver`]: advances a sample one denoising step at a time from the model's velocity. It is
//!   `Clone`, so a sampling session can fork a run at any step (clone, then continue the clone
//!   with another seed), and `Send`, so it can live on the engine thread.
//!
//! Parity with diffusers 0.42 (`FlowMatchEulerDiscreteScheduler` and `UniPCMultistepScheduler`
//! with `prediction_type="flow_prediction"`, `use_flow_sigmas=True`) is checked against committed
//! fixtures in `tests/scheduler_parity.rs`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use stepscope_engine::scheduler::{SchedulerKind, Solver};
//!
//! let mut solver = Solver::new(SchedulerKind::UniPc, 20, 3.0)?;
//! // One latent `[C, F, H, W]`, starting as pure noise at sigma = 1.
//! let mut sample = Tensor::randn(0f32, 1.0, (16, 2, 8, 8), &Device::Cpu)?;
//! for step_idx in 0..solver.schedule().steps() {
//!     let _timestep = solver.schedule().timesteps[step_idx];
//!     let velocity = sample.zeros_like()?; // the model's output at (sample, timestep)
//!     sample = solver.step(step_idx, &velocity, &sample)?;
//! }
//! assert!(solver.is_finished());
//! # assert_eq!(sample.dtype(), DType::F32);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod euler;
mod schedule;
mod unipc;

use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

pub use self::error::{Result, SchedulerError};
pub use self::schedule::{MAX_STEPS, Schedule, TRAIN_TIMESTEPS};
use self::unipc::UniPc;

/// Which diffusers scheduler to reproduce. Serialised as `"euler"` or `"unipc"`, the names that
/// [`FromStr`] and [`fmt::Display`] use too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// `FlowMatchEulerDiscreteScheduler`: the first-order Euler step.
    Euler,
    /// `UniPCMultistepScheduler` in the flow configuration of Wan's checkpoints: a second-order
    /// multistep predictor with a corrector (bh2, x0 form, first order at the last step).
    UniPc,
}

impl SchedulerKind {
    /// The lowercase name, as serialised.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Euler => "euler",
            Self::UniPc => "unipc",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = SchedulerError;

    /// Parses `"euler"` or `"unipc"`, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self> {
        [Self::Euler, Self::UniPc]
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| SchedulerError::UnknownKind { name: name.to_owned() })
    }
}

/// The predicted clean sample `x0_hat = x_t - sigma * v`, computed as diffusers does (the product
/// in the tensors' dtype, `sigma` rounded to it).
///
/// `sample` and `velocity` have the same shape, any rank; so has the result.
pub fn predict_x0(sample: &Tensor, velocity: &Tensor, sigma: f64) -> Result<Tensor> {
    Ok((sample - velocity.affine(sigma, 0.0)?)?)
}

/// A denoising run's schedule and solver state, advanced one step at a time.
///
/// Step `k` takes the sample from `sigmas[k]` to `sigmas[k + 1]` of its [`Schedule`], given the
/// model's velocity at `(sample, timesteps[k])`. Steps must come in order `0, 1, ..., steps - 1`; to
/// rewind or fork a run, keep a clone of the solver from the step to go back to (cloning copies no
/// tensor data: candle tensors are shared, immutable buffers).
#[derive(Debug, Clone)]
pub struct Solver {
    schedule: Schedule,
    next_step_idx: usize,
    state: SolverState,
}

/// The per-kind state carried between steps.
#[derive(Debug, Clone)]
enum SolverState {
    /// Euler is a one-step method: nothing to carry.
    Euler,
    UniPc(UniPc),
}

impl Solver {
    /// A solver at step 0 of a `steps`-step schedule of this `kind` with timestep shift `shift`
    /// (Wan uses 3.0 at 480p and 5.0 at 720p).
    ///
    /// Fails with [`SchedulerError::InvalidSteps`] unless `1 <= steps <= MAX_STEPS`, and with
    /// [`SchedulerError::InvalidShift`] unless `shift` is finite and positive.
    pub fn new(kind: SchedulerKind, steps: usize, shift: f64) -> Result<Self> {
        let schedule = Schedule::new(kind, steps, shift)?;
        let state = match kind {
            SchedulerKind::Euler => SolverState::Euler,
            SchedulerKind::UniPc => SolverState::UniPc(UniPc::default()),
        };
        Ok(Self { schedule, next_step_idx: 0, state })
    }

    /// The sigmas and timesteps this solver steps through.
    #[must_use]
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Which scheduler this is.
    #[must_use]
    pub fn kind(&self) -> SchedulerKind {
        self.schedule.kind
    }

    /// The index the next call to [`Solver::step`] must pass; equals `steps` once finished.
    #[must_use]
    pub fn next_step_idx(&self) -> usize {
        self.next_step_idx
    }

    /// Whether every step of the schedule has been taken.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.next_step_idx == self.schedule.steps()
    }

    /// Takes denoising step `step_idx`: from `sample` at noise level `sigmas[step_idx]` to the
    /// sample at `sigmas[step_idx + 1]`, given `velocity`, the model's output for `sample` at
    /// `timesteps[step_idx]`.
    ///
    /// `velocity` and `sample` must have the same shape (any rank, e.g. a latent `[C, F, H, W]`)
    /// and dtype (f32 is what parity is measured in); the result has them too. With UniPC the
    /// result is the predictor's output; the next step corrects it before predicting from it,
    /// exactly as diffusers does.
    ///
    /// Fails without changing the solver if `step_idx` is not [`Solver::next_step_idx`], if the
    /// run is finished, or if the shapes or dtypes differ.
    pub fn step(&mut self, step_idx: usize, velocity: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let steps = self.schedule.steps();
        if step_idx >= steps {
            return Err(SchedulerError::StepOutOfRange { step_idx, steps });
        }
        if step_idx != self.next_step_idx {
            return Err(SchedulerError::StepOutOfOrder { expected: self.next_step_idx, step_idx });
        }
        if velocity.shape() != sample.shape() {
            return Err(SchedulerError::ShapeMismatch {
                velocity: velocity.shape().clone(),
                sample: sample.shape().clone(),
            });
        }
        if velocity.dtype() != sample.dtype() {
            return Err(SchedulerError::DTypeMismatch { velocity: velocity.dtype(), sample: sample.dtype() });
        }

        let sigmas = &self.schedule.sigmas;
        let next_sample = match &mut self.state {
            SolverState::Euler => {
                euler::euler_step(sigmas[step_idx], sigmas[step_idx + 1], velocity, sample)?
            }
            SolverState::UniPc(unipc) => unipc.step(sigmas, step_idx, velocity, sample)?,
        };
        self.next_step_idx += 1;
        Ok(next_sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in [SchedulerKind::Euler, SchedulerKind::UniPc] {
            assert_eq!(kind.to_string().parse::<SchedulerKind>().ok(), Some(kind));
            let json = serde_json::to_string(&kind).expect("serialisable");
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<SchedulerKind>(&json).ok(), Some(kind));
        }
        assert_eq!("UniPC".parse::<SchedulerKind>().ok(), Some(SchedulerKind::UniPc));
        assert!(matches!("ddim".parse::<SchedulerKind>(), Err(SchedulerError::UnknownKind { .. })));
    }

    #[test]
    fn solver_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Solver>();
    }
}
