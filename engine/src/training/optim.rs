//! `AdamW` (as candle-nn's, with its moments exposed so checkpoints can hold them), global
//! gradient-norm clipping, and the exponential moving average of the weights.
use std::collections::BTreeMap;

use candle_core::Tensor;
use candle_core::backprop::GradStore;

use super::error::Result;
use super::params::{PROMPT_PREFIX, Parameters};

/// `AdamW` state: first and second moments per parameter key, and the update count.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Updates taken (for bias correction).
    pub updates: u64,
    /// `m` per key, shaped like the parameter.
    pub first_moment: BTreeMap<String, Tensor>,
    /// `v` per key, shaped like the parameter.
    pub second_moment: BTreeMap<String, Tensor>,
}

impl AdamW {
    /// Zero moments for every parameter; betas 0.9 / 0.999, eps 1e-8.
    pub fn new(params: &Parameters, weight_decay: f64) -> Result<Self> {
        let mut first_moment = BTreeMap::new();
        let mut second_moment = BTreeMap::new();
        for (key, var) in params.iter() {
            first_moment.insert(key.clone(), var.zeros_like()?);
            second_moment.insert(key.clone(), var.zeros_like()?);
        }
        Ok(Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            updates: 0,
            first_moment,
            second_moment,
        })
    }

    /// One update of every parameter that has a gradient, with learning rate `lr`; gradients
    /// are first scaled by `grad_scale` (clipping). Weight decay applies to weight matrices
    /// (rank >= 2, not the modulation tables or prompts).
    pub fn step(&mut self, params: &Parameters, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.updates += 1;
        let exponent = i32::try_from(self.updates).unwrap_or(i32::MAX);
        let scale_m = 1.0 / (1.0 - self.beta1.powi(exponent));
        let scale_v = 1.0 / (1.0 - self.beta2.powi(exponent));
        for (key, var) in params.iter() {
            let Some(grad) = grads.get(var) else { continue };
            let grad = (grad * grad_scale)?;
            let (Some(m), Some(v)) = (self.first_moment.get_mut(key), self.second_moment.get_mut(key)) else {
                continue;
            };
            *m = ((&*m * self.beta1)? + (&grad * (1.0 - self.beta1))?)?;
            *v = ((&*v * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&*m * scale_m)? / ((&*v * scale_v)?.sqrt()? + self.eps)?)?;
            let decays =
                var.rank() >= 2 && !key.ends_with("scale_shift_table") && !key.starts_with(PROMPT_PREFIX);
            let decayed = if decays {
                (var.as_tensor() * (1.0 - lr * self.weight_decay))?
            } else {
                var.as_tensor().clone()
            };
            var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// The factor that brings the gradients' global L2 norm down to `max_norm` (1 when already
/// below), and that norm.
pub fn clip_scale(params: &Parameters, grads: &GradStore, max_norm: f64) -> Result<(f64, f64)> {
    let mut sum_sq = 0.0f64;
    for (_, var) in params.iter() {
        if let Some(grad) = grads.get(var) {
            sum_sq += f64::from(grad.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sum_sq.sqrt();
    let scale = if norm > max_norm { max_norm / norm } else { 1.0 };
    Ok((scale, norm))
}

/// Exponential moving average of the parameters: `ema = d ema + (1 - d) theta`, with the decay
/// warmed up as `min(decay, (1 + n) / (10 + n))` over the first updates.
#[derive(Debug, Clone)]
pub struct Ema {
    pub decay: f64,
    pub updates: u64,
    pub average: BTreeMap<String, Tensor>,
}

impl Ema {
    pub fn new(params: &Parameters, decay: f64) -> Result<Self> {
        Ok(Self { decay, updates: 0, average: params.snapshot()? })
    }

    pub fn update(&mut self, params: &Parameters) -> Result<()> {
        let n = self.updates as f64;
        let decay = self.decay.min((1.0 + n) / (10.0 + n));
        for (key, var) in params.iter() {
            if let Some(average) = self.average.get_mut(key) {
                *average = ((&*average * decay)? + (var.as_tensor().detach() * (1.0 - decay))?)?;
            }
        }
        self.updates += 1;
        Ok(())
    }
}
