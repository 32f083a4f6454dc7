//! Seed distances and step x frame maps over the sample trajectory (two seeds of the
//! random-weight test model, 12 steps, token norms at layers 0 and 1), checked against sums
//! written out here from the raw tensors.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
use std::path::Path;

use stepscope_engine::analysis::{StepFrameStat, diversity, seed_distances, step_frame_map};
use stepscope_engine::trajectory::{CaptureKind, StepTensor, TensorName, TrajectoryReader};

fn sample() -> TrajectoryReader {
    TrajectoryReader::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample.safetensors"))
        .unwrap()
}

fn values(reader: &TrajectoryReader, name: &TensorName) -> Vec<f32> {
    reader.load(name).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn seed_distance_is_the_rms_of_the_x0_difference() {
    let reader = sample();
    let distances = seed_distances(&reader, 0, StepTensor::X0).unwrap();
    assert_eq!(distances.per_seed.len(), 2);
    assert!(distances.per_seed[0].iter().all(|d| *d == Some(0.0)));
    for step_idx in [0, 5, 11] {
        let a = values(&reader, &TensorName::x0(0, step_idx));
        let b = values(&reader, &TensorName::x0(1, step_idx));
        let mean_square: f64 =
            a.iter().zip(&b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / a.len() as f64;
        let got = distances.per_seed[1][step_idx].unwrap();
        assert!((got - mean_square.sqrt()).abs() < 1e-9, "step {step_idx}: {got}");
        assert!(got > 0.0, "two seeds differ");
    }
}

#[test]
fn change_since_the_last_step_is_per_frame_and_missing_at_step_0() {
    let reader = sample();
    let map = step_frame_map(&reader, 1, StepFrameStat::Change { tensor: StepTensor::X0 }).unwrap();
    assert_eq!((map.steps, map.frames), (12, 3));
    assert!((0..3).all(|frame_idx| map.value(0, frame_idx).is_none()));
    // Step 4, frame 2 by hand: [C=4, F=3, H=8, W=8].
    let before = values(&reader, &TensorName::x0(1, 3));
    let after = values(&reader, &TensorName::x0(1, 4));
    let plane = 64;
    let mut sum = 0.0f64;
    for channel_idx in 0..4 {
        let start = (channel_idx * 3 + 2) * plane;
        sum += (start..start + plane).map(|i| f64::from(after[i] - before[i]).powi(2)).sum::<f64>();
    }
    let expected = (sum / (4 * plane) as f64).sqrt() as f32;
    assert!((map.value(4, 2).unwrap() - expected).abs() < 1e-6);
}

#[test]
fn token_norm_map_is_the_mean_norm_of_each_token_frame() {
    let reader = sample();
    let map = step_frame_map(&reader, 0, StepFrameStat::TokenNorm { layer_idx: 1 }).unwrap();
    // Token grid 3 x 4 x 4.
    assert_eq!((map.steps, map.frames), (12, 3));
    let norms = values(&reader, &TensorName::capture(0, 7, 1, CaptureKind::TokenNorm));
    let expected = norms[16..32].iter().sum::<f32>() / 16.0;
    assert!((map.value(7, 1).unwrap() - expected).abs() < 1e-5);
    let [lo, hi] = map.range().unwrap();
    assert!(lo > 0.0 && hi >= lo);
}

#[test]
fn a_missing_capture_is_an_error_that_names_it() {
    let reader = sample();
    let err = step_frame_map(&reader, 0, StepFrameStat::TokenNorm { layer_idx: 5 }).unwrap_err();
    assert!(err.to_string().contains("s0/k0/layer5/token_norm"), "{err}");
}

fn rms(a: &[f32], b: &[f32]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

#[test]
fn diversity_is_the_distance_between_seeds_and_the_change_between_steps() {
    let reader = sample();
    let diversity = diversity(&reader, StepTensor::X0).unwrap();
    assert_eq!(diversity.between_seeds.len(), 12);
    assert_eq!(diversity.predictions, [2; 12]);
    for step_idx in [0, 6, 11] {
        let a = values(&reader, &TensorName::x0(0, step_idx));
        let b = values(&reader, &TensorName::x0(1, step_idx));
        let got = diversity.between_seeds[step_idx].unwrap();
        assert!((got - rms(&a, &b)).abs() < 1e-9, "step {step_idx}: {got}");
    }
    assert!(diversity.step_change.iter().all(|seed| seed[0].is_none()));
    let before = values(&reader, &TensorName::x0(1, 6));
    let after = values(&reader, &TensorName::x0(1, 7));
    assert!((diversity.step_change[1][7].unwrap() - rms(&before, &after)).abs() < 1e-9);
}
