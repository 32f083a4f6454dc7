//! The committed golden trajectory files, `tests/golden/trajectory_v1.safetensors` (no
//! checksums) and `trajectory_v2.safetensors` (the same run with checksums): every later version
//! of Stepscope must keep reading them, with exactly these manifest fields and values.
//!
//! The files are synthetic: no model ran; each value is a formula of its tensor's and element's
//! index. Regenerate the version-2 file (only when deliberately changing its golden data) with
//! `UPDATE_GOLDEN=1 cargo test -p stepscope-tests --test trajectory_golden`; the version-1 file
//! was written by the version-1 writer and stays as it is.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;
use stepscope_engine::trajectory::{
    CaptureKind, Captures, Conditioning, FORMAT_VERSION, ForkPoint, Manifest, ModelInfo, NoiseSource,
    Schedule, SchedulerKind, SeedRecord, StepTensor, StorageDtype, TaskInfo, TensorName, TrajectoryReader,
    TrajectoryWriter,
};
use stepscope_tests::golden;

const GOLDEN_V1: &str = "trajectory_v1.safetensors";
const GOLDEN_V2: &str = "trajectory_v2.safetensors";

/// Attention heads and text length of the synthetic attention captures (the manifest leaves
/// both free).
const HEADS: usize = 2;
const TEXT_LEN: usize = 3;

/// The golden files' manifest (of format `version`): 3 Euler steps, seed 0 from the RNG, seed 1
/// forked from it at step 1, captures of every kind at two layers.
fn synthetic_manifest(version: u32) -> Manifest {
    let steps = 3;
    let shift = 5.0;
    let sigmas: Vec<f64> = (0..=steps)
        .map(|step_idx| {
            let sigma = 1.0 - step_idx as f64 / steps as f64;
            shift * sigma / (1.0 + (shift - 1.0) * sigma)
        })
        .collect();
    let timesteps = sigmas[..steps].iter().map(|sigma| sigma * 1000.0).collect();
    let config = json!({
        "_class_name": "WanTransformer3DModel",
        "num_layers": 2,
        "num_attention_heads": HEADS,
        "attention_head_dim": 8,
        "in_channels": 4,
        "out_channels": 4,
        "patch_size": [1, 2, 2],
        "text_dim": 8
    });
    let params = json!({"cells": 2});
    Manifest {
        format_version: version,
        created_by: "stepscope golden-file generator (synthetic data)".to_owned(),
        model: ModelInfo {
            source: "synthetic: no model ran, every value is a formula of its index".to_owned(),
            config: config.as_object().cloned().unwrap_or_default(),
            dtype: "f32".to_owned(),
        },
        conditioning: Conditioning {
            prompt: Some("synthetic: draw the path from the green start to the red flag".to_owned()),
            prompt_embeddings: "synthetic".to_owned(),
            guidance_scale: 1.0,
            negative_prompt: false,
            condition_frame: true,
            task: Some(TaskInfo {
                name: "maze".to_owned(),
                seed: 7,
                params: params.as_object().cloned().unwrap_or_default(),
            }),
        },
        schedule: Schedule { scheduler: SchedulerKind::Euler, steps, shift, sigmas, timesteps },
        latent_shape: [4, 2, 4, 4],
        patch_size: [1, 2, 2],
        step_tensors: StepTensor::ALL.to_vec(),
        seeds: vec![
            SeedRecord {
                noise: NoiseSource::RngSeed(42),
                forked_from: None,
                intervention: None,
                steps: vec![0, 1, 2],
                capture_steps: vec![0, 2],
                final_latents: true,
                video_steps: Vec::new(),
            },
            SeedRecord {
                noise: NoiseSource::Given,
                forked_from: Some(ForkPoint { seed_index: 0, step: 1 }),
                intervention: None,
                steps: vec![1, 2],
                capture_steps: vec![2],
                final_latents: true,
                video_steps: Vec::new(),
            },
        ],
        // The kinds of format v1 as the golden file was written (`hidden` came later and is
        // covered by the round-trip tests).
        captures: Captures {
            layers: vec![0, 1],
            kinds: vec![
                CaptureKind::Decoded,
                CaptureKind::TokenNorm,
                CaptureKind::Pca3,
                CaptureKind::SelfAttn,
                CaptureKind::CrossAttn,
            ],
            query_tokens: vec![0, 5],
        },
        video: None,
    }
}

/// Every tensor of the golden file, in file order of the f32 ones: its name, shape and dtype.
fn synthetic_tensors(manifest: &Manifest) -> Vec<(TensorName, Vec<usize>, StorageDtype)> {
    let latent_shape = manifest.latent_shape.to_vec();
    let [tok_f, tok_h, tok_w] = manifest.token_grid();
    let queries = manifest.captures.query_tokens.len();
    let mut tensors = Vec::new();
    for (seed_idx, seed) in manifest.seeds.iter().enumerate() {
        for &step_idx in &seed.steps {
            tensors.push((TensorName::latents(seed_idx, step_idx), latent_shape.clone(), StorageDtype::F32));
            tensors.push((
                TensorName::velocity(seed_idx, step_idx),
                latent_shape.clone(),
                StorageDtype::Bf16,
            ));
            tensors.push((TensorName::x0(seed_idx, step_idx), latent_shape.clone(), StorageDtype::F32));
            if seed.capture_steps.contains(&step_idx) {
                for &layer_idx in &manifest.captures.layers {
                    for &kind in &manifest.captures.kinds {
                        let shape = match kind {
                            CaptureKind::Decoded | CaptureKind::X0 => latent_shape.clone(),
                            CaptureKind::TokenNorm => vec![tok_f, tok_h, tok_w],
                            CaptureKind::Pca3 => vec![3, tok_f, tok_h, tok_w],
                            CaptureKind::SelfAttn => vec![HEADS, queries, manifest.token_count()],
                            CaptureKind::CrossAttn => vec![HEADS, queries, TEXT_LEN],
                            CaptureKind::Hidden => vec![HEADS * 4, tok_f, tok_h, tok_w],
                        };
                        let name = TensorName::capture(seed_idx, step_idx, layer_idx, kind);
                        tensors.push((name, shape, StorageDtype::F16));
                    }
                }
            }
        }
        tensors.push((TensorName::final_latents(seed_idx), latent_shape.clone(), StorageDtype::F32));
    }
    tensors
}

/// The value of element `element_idx` of the `tensor_idx`-th tensor: multiples of 1/8 in
/// [-2, 2], exact in f32, f16 and bf16.
fn synthetic_value(tensor_idx: usize, element_idx: usize) -> f32 {
    ((element_idx * 7 + tensor_idx * 13) % 33) as f32 / 8.0 - 2.0
}

fn synthetic_values(tensor_idx: usize, shape: &[usize]) -> Vec<f32> {
    (0..shape.iter().product()).map(|element_idx| synthetic_value(tensor_idx, element_idx)).collect()
}

fn write_synthetic(path: &Path) {
    let manifest = synthetic_manifest(FORMAT_VERSION);
    let tensors = synthetic_tensors(&manifest);
    let mut writer = TrajectoryWriter::new(manifest);
    for (tensor_idx, (name, shape, dtype)) in tensors.into_iter().enumerate() {
        let values =
            Tensor::from_vec(synthetic_values(tensor_idx, &shape), shape, &Device::Cpu).expect("tensor");
        writer.insert_as(name, values, dtype);
    }
    writer.write(path).expect("write the synthetic trajectory");
}

/// Checks that `reader` holds exactly the synthetic trajectory, of format `version`.
fn assert_is_synthetic(reader: &TrajectoryReader, version: u32) {
    let manifest = synthetic_manifest(version);
    assert_eq!(reader.manifest(), &manifest);
    let expected = synthetic_tensors(&manifest);
    let mut expected_names: Vec<TensorName> = expected.iter().map(|(name, ..)| *name).collect();
    expected_names.sort();
    assert_eq!(reader.tensor_names().copied().collect::<Vec<_>>(), expected_names);
    for (tensor_idx, (name, shape, dtype)) in expected.iter().enumerate() {
        let info = reader.tensor_info(name).expect("listed tensor");
        assert_eq!((info.dtype, &info.shape), (*dtype, shape), "{name}");
        let tensor = reader.load(name).expect("load");
        assert_eq!(tensor.dims(), shape.as_slice(), "{name}");
        let values: Vec<f32> = tensor.flatten_all().and_then(|flat| flat.to_vec1()).expect("values");
        assert_eq!(values, synthetic_values(tensor_idx, shape), "{name}");
    }
}

#[test]
fn golden_v2_file_reads_back_exactly_and_verifies() {
    let path = golden(GOLDEN_V2);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        write_synthetic(&path);
    }
    let reader = TrajectoryReader::open(&path).expect("the committed golden file opens");
    assert!(reader.is_checksummed());
    assert_is_synthetic(&reader, 2);
    let checks = reader.verify(|_| {});
    assert_eq!(checks.len(), 47);
    assert!(checks.iter().all(|check| check.corrupt.is_none() && !check.non_finite.any()));
}

#[test]
fn golden_v1_file_reads_back_exactly() {
    let path = golden(GOLDEN_V1);
    let reader = TrajectoryReader::open(&path).expect("the committed golden file opens");
    assert_eq!(reader.manifest().format_version, 1);
    assert!(!reader.is_checksummed(), "version 1 has no checksums: unverified");
    assert_is_synthetic(&reader, 1);

    // Spot checks by the public string names, independent of the helpers above.
    let sigmas = &reader.manifest().schedule.sigmas;
    let shifted = [1.0, 10.0 / 11.0, 5.0 / 7.0, 0.0];
    assert_eq!(sigmas.len(), shifted.len());
    assert!(
        sigmas.iter().zip(shifted).all(|(sigma, expected)| (sigma - expected).abs() < 1e-12),
        "{sigmas:?}"
    );
    let first = reader.tensor("s0/k0/latents").expect("s0/k0/latents");
    let first: Vec<f32> = first.flatten_all().and_then(|flat| flat.to_vec1()).expect("values");
    assert_eq!(&first[..4], [-2.0, -1.125, -0.25, 0.625]);
    let attention = reader.capture(1, 2, 1, CaptureKind::SelfAttn).expect("self-attention");
    assert_eq!(attention.dims(), [HEADS, 2, 8]);
    assert!(std::fs::metadata(&path).expect("metadata").len() < 200 * 1024, "golden file stays small");
}

#[test]
fn the_current_writer_still_writes_the_golden_trajectory_byte_for_byte() {
    assert_eq!(
        FORMAT_VERSION, 2,
        "a new format version needs its own golden file; keep the older ones for reading"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(GOLDEN_V2);
    write_synthetic(&path);
    assert_is_synthetic(&TrajectoryReader::open(&path).expect("open"), 2);
    assert!(
        std::fs::read(&path).expect("read")
            == std::fs::read(golden(GOLDEN_V2)).expect("read the golden file"),
        "the writer's bytes changed: a format change needs a new version"
    );
}

#[test]
fn golden_v1_file_describes_itself_in_plain_words() {
    let description = TrajectoryReader::open(golden(GOLDEN_V1)).expect("open").describe();
    for phrase in [
        "trajectory_v1.safetensors",
        "Integrity: unverified: format version 1 files carry no checksums",
        "47 tensors (12 F32, 30 F16, 5 BF16)",
        "Task: maze, instance seed 7, params {\"cells\":2}",
        "Schedule: Euler, 3 steps, shift 5, sigma from 1 to 0",
        "seed 1: given noise, forked from seed 0 at step 1; steps 1, 2 (2 of 3); captures at step 2",
        "Captures: layers 0, 1; logit-lens picture, token norms, 3-component PCA, self-attention, \
         cross-attention; attention from tokens 0, 5",
    ] {
        assert!(description.contains(phrase), "missing {phrase:?} in:\n{description}");
    }
}
