//! The engine's seeded noise equals an independent Python implementation of the written spec
//! (`tests/reference/seeded_noise.py`), bit for bit: a seed in a trajectory file means the same
//! noise in any language.
use candle_core::Device;
use stepscope_engine::session::noise::gaussian_noise;
use stepscope_tests::fixture;

#[test]
fn seed_7_matches_the_spec_implementation_exactly() {
    let reference = candle_core::safetensors::load(fixture("noise/seed7_c2f3h4w5.safetensors"), &Device::Cpu)
        .expect("fixture")
        .remove("noise")
        .expect("tensor `noise`");
    let ours = gaussian_noise(7, (2, 3, 4, 5), &Device::Cpu).expect("noise");
    let ours: Vec<f32> = ours.flatten_all().and_then(|t| t.to_vec1()).expect("values");
    let theirs: Vec<f32> = reference.flatten_all().and_then(|t| t.to_vec1()).expect("values");
    assert_eq!(ours.len(), 120);
    let differing = ours.iter().zip(&theirs).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differing, 0, "{differing} of 120 values differ");
}
