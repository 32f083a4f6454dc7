//! Shifted flow-matching schedules, computed the way diffusers computes them.
//!
//! Both schedulers apply the same shift, `sigma' = shift * sigma / (1 + (shift - 1) * sigma)`, but
//! differ in what they shift and in how they round:
//!
//! - `FlowMatchEulerDiscreteScheduler` shifts twice. Its constructor shifts the 1000 training
//!   sigmas `1.0, 0.999, ..., 0.001` in f32; `set_timesteps` spaces the inference sigmas evenly
//!   between the first and the last of those (already shifted) values and shifts them again, in
//!   f64. The sigmas are then rounded to f32 and the timesteps are `sigma * 1000` in f32.
//! - `UniPCMultistepScheduler` with `use_flow_sigmas` shifts once: the `steps + 1` values of
//!   `linspace(1, 0.001)` without the last, in f64. A first sigma within 1e-6 of 1 is lowered by
//!   1e-6 (so that `log(1 - sigma)` stays finite), the timesteps are `sigma * 1000` truncated to
//!   integers, and the sigmas are rounded to f32.
//!
//! Both append a final sigma of 0.

use serde::{Deserialize, Serialize};

use super::SchedulerKind;
use super::error::{Result, SchedulerError};

/// Number of discrete timesteps the model was trained on (diffusers' `num_train_timesteps`).
pub const TRAIN_TIMESTEPS: usize = 1000;

/// The most denoising steps a schedule may have: one per training timestep.
pub const MAX_STEPS: usize = TRAIN_TIMESTEPS;

/// The noise levels and model timesteps of one sampling run.
///
/// Built by [`Schedule::new`] and owned by a [`Solver`](super::Solver); it also (de)serialises as
/// a plain record for trajectory files. Values that diffusers keeps in f32 are stored here as those
/// f32 values widened to f64, so that they print and compare exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Which diffusers scheduler this schedule reproduces.
    pub kind: SchedulerKind,
    /// The timestep shift (`shift` for Euler, `flow_shift` for UniPC).
    pub shift: f64,
    /// Noise level before each step and after the last: `steps + 1` values, decreasing from (about)
    /// 1 to exactly 0. Step `k` takes the sample from `sigmas[k]` to `sigmas[k + 1]`.
    pub sigmas: Vec<f64>,
    /// The timestep the model is conditioned on at each step: `steps` values in `(0, 1000]`.
    pub timesteps: Vec<f64>,
}

impl Schedule {
    /// Builds the schedule of `steps` denoising steps that diffusers' scheduler of this `kind`
    /// computes with `shift`.
    pub fn new(kind: SchedulerKind, steps: usize, shift: f64) -> Result<Self> {
        if steps == 0 || steps > MAX_STEPS {
            return Err(SchedulerError::InvalidSteps { steps });
        }
        if !(shift.is_finite() && shift > 0.0) {
            return Err(SchedulerError::InvalidShift { shift });
        }
        let (sigmas, timesteps) = match kind {
            SchedulerKind::Euler => euler_sigmas(steps, shift),
            SchedulerKind::UniPc => unipc_sigmas(steps, shift),
        };
        Ok(Self { kind, shift, sigmas, timesteps })
    }

    /// Number of denoising steps.
    #[must_use]
    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }
}

/// The timestep shift in f64, with the operations in diffusers' (numpy's) order.
fn shift_sigma(sigma: f64, shift: f64) -> f64 {
    shift * sigma / (1.0 + (shift - 1.0) * sigma)
}

/// The timestep shift as torch evaluates it on an f32 tensor: Python's f64 scalars `shift` and
/// `shift - 1` are rounded to f32 and every operation rounds to f32.
fn shift_sigma_f32(sigma: f32, shift: f64) -> f32 {
    (shift as f32) * sigma / (1.0 + ((shift - 1.0) as f32) * sigma)
}

/// `numpy.linspace(start, stop, num)` in f64, bit for bit: `start + i * step` with
/// `step = (stop - start) / (num - 1)`, and the last value set to `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut values: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = values.last_mut() {
        *last = stop;
    }
    values
}

/// `(sigmas, timesteps)` of `FlowMatchEulerDiscreteScheduler(shift).set_timesteps(steps)`.
fn euler_sigmas(steps: usize, shift: f64) -> (Vec<f64>, Vec<f64>) {
    let train_timesteps = TRAIN_TIMESTEPS as f32;
    // The constructor's shifted training sigmas, of which only the ends matter: 1000/1000 (exactly
    // 1) and 1/1000.
    let train_sigma_max = shift_sigma_f32(1.0, shift);
    let train_sigma_min = shift_sigma_f32(1.0 / train_timesteps, shift);

    let train_timesteps = f64::from(train_timesteps);
    let unshifted_timesteps = linspace(
        f64::from(train_sigma_max) * train_timesteps,
        f64::from(train_sigma_min) * train_timesteps,
        steps,
    );
    let sigmas_f32: Vec<f32> = unshifted_timesteps
        .iter()
        .map(|&timestep| shift_sigma(timestep / train_timesteps, shift) as f32)
        .collect();

    let timesteps = sigmas_f32.iter().map(|&sigma| f64::from(sigma * TRAIN_TIMESTEPS as f32)).collect();
    let sigmas = sigmas_f32.iter().map(|&sigma| f64::from(sigma)).chain([0.0]).collect();
    (sigmas, timesteps)
}

/// `(sigmas, timesteps)` of `UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift,
/// final_sigmas_type="zero").set_timesteps(steps)`.
fn unipc_sigmas(steps: usize, shift: f64) -> (Vec<f64>, Vec<f64>) {
    const FIRST_SIGMA_MARGIN: f64 = 1e-6;
    let train_timesteps = TRAIN_TIMESTEPS as f64;

    let mut sigmas: Vec<f64> = linspace(1.0, 1.0 / train_timesteps, steps + 1)
        .into_iter()
        .take(steps)
        .map(|sigma| shift_sigma(sigma, shift))
        .collect();
    if let Some(first) = sigmas.first_mut()
        && (*first - 1.0).abs() < FIRST_SIGMA_MARGIN
    {
        *first -= FIRST_SIGMA_MARGIN;
    }

    // diffusers stores these as int64: the cast truncates towards zero.
    let timesteps = sigmas.iter().map(|&sigma| (sigma * train_timesteps).trunc()).collect();
    let sigmas = sigmas.iter().map(|&sigma| f64::from(sigma as f32)).chain([0.0]).collect();
    (sigmas, timesteps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_endpoints() {
        assert_eq!(linspace(2.0, 5.0, 1), [2.0]);
        assert_eq!(linspace(1.0, 0.0, 3), [1.0, 0.5, 0.0]);
        assert_eq!(linspace(1000.0, 2.994, 5).last(), Some(&2.994));
    }

    #[test]
    fn shapes_and_ends() {
        for kind in [SchedulerKind::Euler, SchedulerKind::UniPc] {
            let schedule = Schedule::new(kind, 7, 3.0).expect("valid settings");
            assert_eq!(schedule.steps(), 7);
            assert_eq!(schedule.sigmas.len(), 8);
            assert_eq!(schedule.sigmas.last(), Some(&0.0));
            assert!(schedule.sigmas.windows(2).all(|pair| pair[0] > pair[1]));
        }
    }

    #[test]
    #[expect(clippy::float_cmp, reason = "a shift of 1 must leave sigmas bit for bit unchanged")]
    fn shift_one_is_identity() {
        assert_eq!(shift_sigma(0.25, 1.0), 0.25);
        assert_eq!(shift_sigma_f32(0.25, 1.0), 0.25);
    }
}
