//! The Euler step of `FlowMatchEulerDiscreteScheduler`.

use candle_core::Tensor;

use super::error::Result;

/// One Euler step of the flow ODE from noise level `sigma` to `sigma_next`:
/// `x_next = x + (sigma_next - sigma) * v`.
///
/// `velocity` and `sample` have the same shape, any rank. As in diffusers, the step size is the
/// difference of the two f32 sigmas, taken in f32.
pub(super) fn euler_step(sigma: f64, sigma_next: f64, velocity: &Tensor, sample: &Tensor) -> Result<Tensor> {
    let step_size = f64::from(sigma_next as f32 - sigma as f32);
    Ok((sample + velocity.affine(step_size, 0.0)?)?)
}
