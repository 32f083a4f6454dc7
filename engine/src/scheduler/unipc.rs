//! UniPC (Zhao et al. 2023, arXiv 2302.04867) as diffusers' `UniPCMultistepScheduler` runs it for
//! Wan: `prediction_type="flow_prediction"`, `use_flow_sigmas=True`, `solver_order=2`,
//! `solver_type="bh2"`, `predict_x0=True`, `lower_order_final=True`, no corrector disabled.
//!
//! In flow matching the signal and noise scales are `alpha = 1 - sigma` and `sigma`; UniPC steps in
//! `lambda = ln(alpha / sigma)` on the model's x0 predictions `x0_k = x_k - sigma_k * v_k`.
//! Step `k` (from `sigmas[k]` to `sigmas[k + 1]`) does, in order:
//!
//! 1. **Corrector** (every step but the first): re-derives `x_k` from `x_{k-1}` with the new `x0_k`
//!    in the fit. The model output was computed on the uncorrected `x_k`; only the predictor below
//!    starts from the corrected one. The corrector's order is the previous predictor's.
//! 2. **Predictor** of order `min(2, steps - k, k + 1)`: first order at the first step (no history
//!    yet) and at the last step (lower-order final), second order in between, with diffusers'
//!    fixed weight `rho = 1/2` on the finite difference.
//!
//! The scalar coefficients are computed in f64 (diffusers uses f32 scalar tensors), the tensor
//! arithmetic in the sample's dtype.

use candle_core::Tensor;

use super::error::Result;
use super::predict_x0;

/// The highest order of the predictor (diffusers' `solver_order`; 2 in Wan's config).
const SOLVER_ORDER: usize = 2;

/// Multistep state of a UniPC run: what step `k` needs from step `k - 1`.
#[derive(Debug, Clone, Default)]
pub(super) struct UniPc {
    /// `None` before the first step.
    previous: Option<PreviousStep>,
}

/// What one UniPC step leaves for the next. Tensors have the sample's shape.
#[derive(Debug, Clone)]
struct PreviousStep {
    /// The sample its predictor started from, after correction: `x_{k-1}`.
    sample: Tensor,
    /// Its x0 prediction, `x0_{k-1}`.
    x0: Tensor,
    /// The x0 prediction of the step before, `x0_{k-2}`; `None` when `k - 1` was the first step.
    x0_before: Option<Tensor>,
    /// The order its predictor used, which the next corrector reuses.
    order: usize,
}

impl UniPc {
    /// Runs step `step_idx` of the schedule `sigmas` (`steps + 1` values): corrects `sample` with
    /// the new x0 prediction, then predicts the sample at `sigmas[step_idx + 1]`.
    ///
    /// The caller checks that `step_idx < steps` and that steps come in order.
    pub(super) fn step(
        &mut self,
        sigmas: &[f64],
        step_idx: usize,
        velocity: &Tensor,
        sample: &Tensor,
    ) -> Result<Tensor> {
        let steps = sigmas.len() - 1;
        let x0 = predict_x0(sample, velocity, sigmas[step_idx])?;

        let sample = match &self.previous {
            Some(previous) => correct(sigmas, step_idx, previous, &x0)?,
            None => sample.clone(),
        };

        let x0_prev = self.previous.as_ref().map(|previous| &previous.x0);
        let order = SOLVER_ORDER.min(steps - step_idx).min(step_idx + 1);
        let x0_for_order2 = if order == 2 { x0_prev } else { None };
        let next_sample = predict(sigmas, step_idx, &sample, &x0, x0_for_order2)?;

        // Only now that nothing can fail does the state move on.
        let x0_before = x0_prev.cloned();
        self.previous = Some(PreviousStep { sample, x0, x0_before, order });
        Ok(next_sample)
    }
}

/// `lambda = ln(alpha / sigma)` with `alpha = 1 - sigma`: half the log signal-to-noise ratio.
fn lambda(sigma: f64) -> f64 {
    (1.0 - sigma).ln() - sigma.ln()
}

/// The exponential-integrator quantities of one interval, from noise level `sigma_s` down to
/// `sigma_t`.
struct Interval {
    /// `sigma_t / sigma_s`.
    sigma_ratio: f64,
    /// `alpha_t = 1 - sigma_t`.
    alpha_t: f64,
    /// The step in lambda, `h = lambda_t - lambda_s > 0`.
    h: f64,
    /// `h * phi_1(-h) = e^(-h) - 1`; also `B(h)` of the bh2 variant.
    h_phi_1: f64,
}

impl Interval {
    fn new(sigma_s: f64, sigma_t: f64) -> Self {
        let h = lambda(sigma_t) - lambda(sigma_s);
        Self { sigma_ratio: sigma_t / sigma_s, alpha_t: 1.0 - sigma_t, h, h_phi_1: (-h).exp_m1() }
    }

    /// The position of an earlier noise level on this interval's lambda axis, relative to `h`:
    /// `r = (lambda(sigma_earlier) - lambda_s) / h`, negative.
    fn ratio_of(&self, sigma_s: f64, sigma_earlier: f64) -> f64 {
        (lambda(sigma_earlier) - lambda(sigma_s)) / self.h
    }

    /// The first-order update `sigma_t / sigma_s * x_s - alpha_t * (e^(-h) - 1) * x0`.
    fn first_order(&self, sample: &Tensor, x0: &Tensor) -> Result<Tensor> {
        Ok(((sample * self.sigma_ratio)? - (x0 * (self.alpha_t * self.h_phi_1))?)?)
    }
}

/// The predictor of step `step_idx`: from `sample` at `sigmas[step_idx]` to `sigmas[step_idx + 1]`,
/// with the x0 prediction `x0` of this step and, for second order, `x0_prev` of the step before.
fn predict(
    sigmas: &[f64],
    step_idx: usize,
    sample: &Tensor,
    x0: &Tensor,
    x0_prev: Option<&Tensor>,
) -> Result<Tensor> {
    let (sigma_s, sigma_t) = (sigmas[step_idx], sigmas[step_idx + 1]);
    if sigma_t == 0.0 {
        // lambda_t = inf, so e^(-h) - 1 = -1 and the update is exactly the x0 prediction: this is
        // what diffusers' formula evaluates to, without the infinities.
        return Ok(x0.clone());
    }
    let interval = Interval::new(sigma_s, sigma_t);
    let first_order = interval.first_order(sample, x0)?;
    let Some(x0_prev) = x0_prev else {
        return Ok(first_order);
    };

    // Second order: the finite difference D1 = (x0_prev - x0) / r with diffusers' rho = 1/2.
    let r = interval.ratio_of(sigma_s, sigmas[step_idx - 1]);
    let weight = interval.alpha_t * interval.h_phi_1 * 0.5 / r;
    Ok((first_order - ((x0_prev - x0)? * weight)?)?)
}

/// The corrector at step `step_idx`: recomputes the sample at `sigmas[step_idx]` from the previous
/// step's corrected sample, with `x0`, the x0 prediction at the uncorrected sample, added to the fit.
fn correct(sigmas: &[f64], step_idx: usize, previous: &PreviousStep, x0: &Tensor) -> Result<Tensor> {
    let (sigma_s, sigma_t) = (sigmas[step_idx - 1], sigmas[step_idx]);
    let interval = Interval::new(sigma_s, sigma_t);
    let first_order = interval.first_order(&previous.sample, &previous.x0)?;
    let d1_t = (x0 - &previous.x0)?;
    let b_h = interval.h_phi_1;

    let correction = match (&previous.x0_before, previous.order) {
        (Some(x0_before), 2) => {
            // Solve [[1, 1], [r, 1]] (rho_1, rho_t) = (b_1, b_2), with
            // b_i = i! * h phi_(i+1)(-h) / B(h) in diffusers' recursion for h phi_k.
            let hh = -interval.h;
            let h_phi_2 = interval.h_phi_1 / hh - 1.0;
            let h_phi_3 = h_phi_2 / hh - 0.5;
            let (b_1, b_2) = (h_phi_2 / b_h, 2.0 * h_phi_3 / b_h);
            let r = interval.ratio_of(sigma_s, sigmas[step_idx - 2]);
            let rho_1 = (b_1 - b_2) / (1.0 - r);
            let rho_t = b_1 - rho_1;
            let d1 = ((x0_before - &previous.x0)? / r)?;
            ((d1 * rho_1)? + (d1_t * rho_t)?)?
        }
        _ => (d1_t * 0.5)?,
    };
    Ok((first_order - (correction * (interval.alpha_t * b_h))?)?)
}
