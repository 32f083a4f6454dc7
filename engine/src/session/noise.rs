//! Reproducible Gaussian noise from a seed.
//!
//! The generator is part of the trajectory contract (a Python user can regenerate a run's noise
//! from its seed), so it is spelled out here rather than borrowed from a crate whose stream may
//! change between versions:
//!
//! 1. `splitmix64`: `state += 0x9E3779B97F4A7C15`; `z = state`;
//!    `z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9`; `z = (z ^ (z >> 27)) * 0x94D049BB133111EB`;
//!    output `z ^ (z >> 31)` (wrapping arithmetic, starting from `state = seed`).
//! 2. A uniform in `(0, 1]`: `((z >> 11) + 1) * 2^-53`.
//! 3. Box-Muller on consecutive uniforms `(u1, u2)`: `r = sqrt(-2 ln u1)`, emitting
//!    `r cos(2 pi u2)` then `r sin(2 pi u2)`, in f64, rounded to f32.
//!
//! Values fill the tensor in row-major (C) order.
use candle_core::{Device, Shape, Tensor};

/// The `splitmix64` stream of [`gaussian_noise`].
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`, so its logarithm is finite.
    fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Standard normal noise of `shape` from `seed`, f32 (see the module docs for the exact stream).
pub fn gaussian_noise(seed: u64, shape: impl Into<Shape>, device: &Device) -> candle_core::Result<Tensor> {
    let shape = shape.into();
    let count = shape.elem_count();
    let mut rng = SplitMix64 { state: seed };
    let mut values = Vec::with_capacity(count + 1);
    while values.len() < count {
        let radius = (-2.0 * rng.next_unit().ln()).sqrt();
        let angle = std::f64::consts::TAU * rng.next_unit();
        values.push((radius * angle.cos()) as f32);
        values.push((radius * angle.sin()) as f32);
    }
    values.truncate(count);
    Tensor::from_vec(values, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed() {
        // splitmix64's published first output for seed 0.
        assert_eq!(SplitMix64 { state: 0 }.next_u64(), 0xE220_A839_7B1D_CDAF);
        let noise = gaussian_noise(7, 4, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        let again = gaussian_noise(7, 4, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(noise, again);
        assert_ne!(noise, gaussian_noise(8, 4, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap());
    }

    #[test]
    fn samples_look_standard_normal() {
        let noise = gaussian_noise(42, 100_000, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
        let n = noise.len() as f64;
        let mean = noise.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = noise.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }
}
