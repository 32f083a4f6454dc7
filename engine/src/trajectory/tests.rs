//! Round trips through the writer and the reader.

use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

use super::*;

/// Two steps, one seed (captures at step 1) and one seed forked from it at step 1.
pub(super) fn small_manifest() -> Manifest {
    let config = json!({"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 8});
    Manifest {
        format_version: FORMAT_VERSION,
        created_by: "trajectory unit tests".to_owned(),
        model: ModelInfo {
            source: "synthetic".to_owned(),
            config: config.as_object().cloned().unwrap_or_default(),
            dtype: "f32".to_owned(),
        },
        conditioning: Conditioning {
            prompt: Some("solve the maze".to_owned()),
            prompt_embeddings: "synthetic".to_owned(),
            guidance_scale: 1.0,
            negative_prompt: false,
            condition_frame: true,
            task: None,
        },
        schedule: Schedule {
            scheduler: SchedulerKind::Euler,
            steps: 2,
            shift: 3.0,
            sigmas: vec![1.0, 0.75, 0.0],
            timesteps: vec![1000.0, 750.0],
        },
        latent_shape: [2, 2, 4, 4],
        patch_size: [1, 2, 2],
        step_tensors: StepTensor::ALL.to_vec(),
        seeds: vec![
            SeedRecord {
                noise: NoiseSource::RngSeed(7),
                forked_from: None,
                intervention: None,
                steps: vec![0, 1],
                capture_steps: vec![1],
                final_latents: true,
                video_steps: Vec::new(),
            },
            SeedRecord {
                noise: NoiseSource::Given,
                forked_from: Some(ForkPoint { seed_index: 0, step: 1 }),
                intervention: None,
                steps: vec![1],
                capture_steps: vec![],
                final_latents: true,
                video_steps: vec![1],
            },
        ],
        captures: Captures {
            layers: vec![1],
            kinds: vec![CaptureKind::TokenNorm, CaptureKind::SelfAttn, CaptureKind::Hidden],
            query_tokens: vec![0, 3],
        },
        // The fork also stores its step-1 prediction decoded (as a VAE would: 4x the frames and
        // 8x the size of the latent; synthetic values here).
        video: Some(VideoInfo { shape: [3, 5, 32, 32], decoder: "synthetic".to_owned() }),
    }
}

/// Values exactly representable in f16 and bf16, different for every tensor.
fn synthetic_tensor(manifest: &Manifest, name: &TensorName, tensor_idx: usize) -> Tensor {
    let dims = concrete_shape(manifest, name);
    let count: usize = dims.iter().product();
    let values: Vec<f32> = (0..count).map(|i| ((i * 5 + tensor_idx * 3) % 17) as f32 / 4.0 - 2.0).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).expect("tensor")
}

/// The shape of a promised tensor, with the dimensions the manifest leaves free fixed: 2
/// attention heads, 5 text tokens.
fn concrete_shape(manifest: &Manifest, name: &TensorName) -> Vec<usize> {
    let [tok_f, tok_h, tok_w] = manifest.token_grid();
    let queries = manifest.captures.query_tokens.len();
    match *name {
        TensorName::Step { .. }
        | TensorName::Final { .. }
        | TensorName::Capture { kind: CaptureKind::Decoded | CaptureKind::X0, .. } => {
            manifest.latent_shape.to_vec()
        }
        TensorName::Capture { kind: CaptureKind::TokenNorm, .. } => vec![tok_f, tok_h, tok_w],
        TensorName::Capture { kind: CaptureKind::Pca3, .. } => vec![3, tok_f, tok_h, tok_w],
        TensorName::Capture { kind: CaptureKind::SelfAttn, .. } => vec![2, queries, manifest.token_count()],
        TensorName::Capture { kind: CaptureKind::CrossAttn, .. } => vec![2, queries, 5],
        TensorName::Capture { kind: CaptureKind::Hidden, .. } => vec![6, tok_f, tok_h, tok_w],
        TensorName::Video { .. } => {
            manifest.video.as_ref().map_or_else(Vec::new, |video| video.shape.to_vec())
        }
    }
}

/// A writer holding every tensor `manifest` promises, stored as `storage`.
pub(super) fn full_writer(manifest: Manifest, storage: StorageDtype) -> TrajectoryWriter {
    let names: Vec<TensorName> = manifest.promised_names().collect();
    let mut writer = TrajectoryWriter::new(manifest).with_storage(storage);
    for (tensor_idx, name) in names.iter().enumerate() {
        let tensor = synthetic_tensor(writer.manifest(), name, tensor_idx);
        writer.insert(*name, tensor);
    }
    writer
}

fn values(tensor: &Tensor) -> Vec<f32> {
    tensor.flatten_all().and_then(|flat| flat.to_vec1()).expect("f32 values")
}

#[test]
fn f32_round_trip_is_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let writer = full_writer(small_manifest(), StorageDtype::F32);
    writer.write(&path).expect("write");

    let reader = TrajectoryReader::open(&path).expect("open");
    assert_eq!(reader.manifest(), writer.manifest());
    assert_eq!(reader.tensor_names().count(), writer.len());
    for (tensor_idx, name) in writer.manifest().promised_names().enumerate() {
        let expected = synthetic_tensor(writer.manifest(), &name, tensor_idx);
        let read = reader.load(&name).expect("load");
        assert_eq!(read.dims(), expected.dims(), "{name}");
        assert_eq!(values(&read), values(&expected), "{name}");
        assert_eq!(reader.tensor_info(&name).map(|info| info.dtype), Some(StorageDtype::F32));
    }
    assert_eq!(values(&reader.x0(0, 1).expect("x0")), values(&reader.tensor("s0/k1/x0").expect("by name")));
}

#[test]
fn half_precision_storage_round_trips_representable_values_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let mut writer = full_writer(small_manifest(), StorageDtype::F16);
    let bf16_name = TensorName::velocity(1, 1);
    let bf16_tensor = synthetic_tensor(writer.manifest(), &bf16_name, 99);
    writer.insert_as(bf16_name, bf16_tensor.clone(), StorageDtype::Bf16);
    writer.write(&path).expect("write");

    let reader = TrajectoryReader::open(&path).expect("open");
    let latents = TensorName::latents(0, 0);
    assert_eq!(reader.tensor_info(&latents).map(|info| info.dtype), Some(StorageDtype::F16));
    assert_eq!(reader.tensor_info(&bf16_name).map(|info| info.dtype), Some(StorageDtype::Bf16));
    let read = reader.latents(0, 0).expect("latents");
    assert_eq!(read.dtype(), candle_core::DType::F32);
    assert_eq!(values(&read), values(&synthetic_tensor(reader.manifest(), &latents, 0)));
    assert_eq!(values(&reader.velocity(1, 1).expect("bf16 velocity")), values(&bf16_tensor));
    for name in reader.tensor_names() {
        let info = reader.tensor_info(name).expect("listed");
        assert_eq!(
            info.data_range.len(),
            2 * info.shape.iter().product::<usize>(),
            "{name} takes 2 bytes a value"
        );
    }
}

#[test]
fn f16_storage_rounds_to_nearest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let mut writer = full_writer(small_manifest(), StorageDtype::F32);
    let name = TensorName::final_latents(0);
    let third =
        Tensor::full(1.0_f32 / 3.0, small_manifest().latent_shape.as_slice(), &Device::Cpu).expect("full");
    writer.insert_as(name, third, StorageDtype::F16);
    writer.write(&path).expect("write");
    let read = TrajectoryReader::open(&path).and_then(|reader| reader.final_latents(0)).expect("read");
    let expected = half::f16::from_f32(1.0 / 3.0).to_f32();
    assert_eq!(values(&read), vec![expected; read.elem_count()]);
}

#[test]
fn files_are_aligned_and_read_by_the_safetensors_crate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let mut writer = full_writer(small_manifest(), StorageDtype::F32);
    let bf16_name = TensorName::x0(0, 0);
    let tensor = synthetic_tensor(writer.manifest(), &bf16_name, 0);
    writer.insert_as(bf16_name, tensor, StorageDtype::Bf16);
    writer.write(&path).expect("write");

    let bytes = fs::read(&path).expect("read");
    let parsed = safetensors::SafeTensors::deserialize(&bytes).expect("the safetensors crate reads it");
    assert_eq!(parsed.len(), writer.len());
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&bytes).expect("metadata");
    assert_eq!((8 + header_len) % 8, 0, "data section starts 8-aligned");
    let manifest_json =
        metadata.metadata().as_ref().and_then(|map| map.get(MANIFEST_KEY)).expect("manifest key");
    let manifest: Manifest = serde_json::from_str(manifest_json).expect("manifest parses");
    assert_eq!(&manifest, writer.manifest());
    for (name, info) in metadata.tensors() {
        let element_size = info.dtype.bitsize() / 8;
        assert_eq!(info.data_offsets.0 % element_size, 0, "{name} is aligned to its element size");
    }
}

#[test]
fn write_checks_the_tensors_against_the_manifest_and_keeps_the_old_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    fs::write(&path, b"previous run").expect("old file");
    let keeps_old_file = |path: &Path| assert_eq!(fs::read(path).expect("read"), b"previous run");

    let mut missing = full_writer(small_manifest(), StorageDtype::F32);
    let latent_shape = missing.manifest().latent_shape;
    assert!(missing.remove(&TensorName::velocity(0, 1)).is_some());
    let error = missing.write(&path).expect_err("missing tensor");
    assert!(
        matches!(&error, TrajectoryError::MissingTensor { tensor, .. } if tensor == "s0/k1/velocity"),
        "{error}"
    );
    keeps_old_file(&path);

    let mut unexpected = full_writer(small_manifest(), StorageDtype::F32);
    let zeros = Tensor::zeros(latent_shape.as_slice(), candle_core::DType::F32, &Device::Cpu).expect("zeros");
    unexpected.insert(TensorName::x0(1, 0), zeros.clone());
    let error = unexpected.write(&path).expect_err("unexpected tensor");
    assert!(
        matches!(&error, TrajectoryError::UnexpectedTensor { tensor, .. } if tensor == "s1/k0/x0"),
        "{error}"
    );
    keeps_old_file(&path);

    let mut wrong_shape = full_writer(small_manifest(), StorageDtype::F32);
    wrong_shape.insert(TensorName::x0(0, 0), zeros.reshape((2, 2, 16)).expect("reshape"));
    let error = wrong_shape.write(&path).expect_err("wrong shape");
    assert!(matches!(error, TrajectoryError::WrongShape { .. }), "{error}");
    assert!(error.to_string().contains("[2, 2, 4, 4]"), "{error}");
    keeps_old_file(&path);

    let mut bad_schedule = full_writer(small_manifest(), StorageDtype::F32);
    bad_schedule.manifest_mut().schedule.sigmas.pop();
    let error = bad_schedule.write(&path).expect_err("bad schedule");
    assert!(matches!(error, TrajectoryError::InvalidManifest { .. }), "{error}");
    assert!(error.to_string().contains("schedule.sigmas"), "{error}");
    keeps_old_file(&path);

    assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "no temporary file left behind");
}

#[test]
fn rewriting_a_file_leaves_open_readers_on_the_old_contents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    let first = full_writer(small_manifest(), StorageDtype::F32);
    first.write(&path).expect("first write");
    let old_reader = TrajectoryReader::open(&path).expect("open");
    let old_values = values(&old_reader.latents(0, 0).expect("latents"));

    let mut second = full_writer(small_manifest(), StorageDtype::F32);
    let shape = second.manifest().latent_shape;
    second.insert(
        TensorName::latents(0, 0),
        Tensor::ones(shape.as_slice(), candle_core::DType::F32, &Device::Cpu).expect("ones"),
    );
    second.write(&path).expect("second write");

    assert_eq!(values(&old_reader.latents(0, 0).expect("old latents")), old_values);
    let new_reader = TrajectoryReader::open(&path).expect("reopen");
    let new_latents = new_reader.latents(0, 0).expect("new latents");
    assert_eq!(values(&new_latents), vec![1.0; new_latents.elem_count()]);
}

#[test]
fn accessors_report_tensors_the_file_lacks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    full_writer(small_manifest(), StorageDtype::F32).write(&path).expect("write");
    let reader = TrajectoryReader::open(&path).expect("open");
    for error in [
        reader.latents(1, 0).expect_err("seed 1 starts at step 1"),
        reader.capture(0, 0, 1, CaptureKind::TokenNorm).expect_err("no capture at step 0"),
        reader.tensor("not/a/name").expect_err("not a name"),
    ] {
        assert!(matches!(error, TrajectoryError::TensorNotFound { .. }), "{error}");
        assert!(error.to_string().contains("run.safetensors"), "{error}");
    }
    assert_eq!(reader.capture(0, 1, 1, CaptureKind::SelfAttn).expect("attention").dims(), [2, 2, 8]);
}

#[test]
fn describe_names_the_essentials_in_plain_words() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.safetensors");
    full_writer(small_manifest(), StorageDtype::F32).write(&path).expect("write");
    let description = TrajectoryReader::open(&path).expect("open").describe();
    for phrase in [
        "run.safetensors",
        "format version 2",
        "Integrity: CRC-32 per 4096 KiB chunk of every tensor and of the manifest",
        "Model: synthetic, computing in f32, 2 layers, 2 heads of 8",
        "prompt \"solve the maze\"",
        "Schedule: Euler, 2 steps, shift 3, sigma from 1 to 0",
        "2 channels x 2 frames x 4 x 4",
        "token grid 2 x 2 x 2 (8 tokens)",
        "seed 0: RNG seed 7; steps 0, 1 (2 of 2); captures at step 1; final latents",
        "seed 1: given noise, forked from seed 0 at step 1; step 1 (1 of 2); no captures",
        "Captures: layers 1; token norms, self-attention, hidden states; attention from tokens 0, 3",
    ] {
        assert!(description.contains(phrase), "missing {phrase:?} in:\n{description}");
    }
}

#[test]
fn readers_and_writers_can_move_to_other_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TrajectoryReader>();
    assert_send_sync::<TrajectoryWriter>();
    assert_send_sync::<TrajectoryError>();
}

#[test]
fn a_frame_reads_the_same_values_as_the_whole_tensor_in_every_storage() {
    let dir = tempfile::tempdir().expect("temp dir");
    for storage in [StorageDtype::F32, StorageDtype::F16, StorageDtype::Bf16] {
        let path = dir.path().join(format!("run_{storage:?}.safetensors"));
        full_writer(small_manifest(), storage).write(&path).expect("write");
        let reader = TrajectoryReader::open(&path).expect("open");
        let name = TensorName::x0(0, 1);
        let (whole, shape) = reader.load_values(&name).expect("whole");
        let &[channels, frames, height, width] = shape.as_slice() else { panic!("[C, F, H, W]: {shape:?}") };
        assert_eq!(reader.shape_of(&name), Some(shape.as_slice()));
        for frame_idx in 0..frames {
            let (frame, frame_shape) = reader.load_frame(&name, frame_idx).expect("a frame");
            assert_eq!(frame_shape, [channels, height, width]);
            let expected: Vec<f32> = (0..channels)
                .flat_map(|c| {
                    let start = (c * frames + frame_idx) * height * width;
                    whole[start..start + height * width].to_vec()
                })
                .collect();
            assert_eq!(frame, expected, "{storage:?} frame {frame_idx}");
        }
        let past_end = reader.load_frame(&name, frames).expect_err("no such frame").to_string();
        assert!(past_end.contains(&format!("more than {frames} frames")), "{past_end}");
        assert!(reader.load_frame(&TensorName::x0(9, 9), 0).is_err());
    }
}
