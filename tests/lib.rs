//! Shared helpers for the workspace-level integration tests.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device};
use stepscope_engine::model::WanTransformer;
use stepscope_engine::recording::RunProvenance;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{CaptureSpec, Conditioning, NoiseSource, SessionSettings};
use stepscope_engine::worker::{EngineEvent, EngineHandle, RunRequest};

/// Path of a file under `tests/fixtures/`.
#[must_use]
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(relative)
}

/// Largest absolute elementwise difference between two same-shaped tensors, in f32.
///
/// # Panics
/// If the shapes differ or the tensors cannot be read: a test failure either way.
#[must_use]
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let f32_of = |t: &candle_core::Tensor| t.to_dtype(candle_core::DType::F32);
    let largest = (|| (f32_of(a)? - f32_of(b)?)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())();
    largest.expect("tensors comparable in f32")
}

/// Path of a file under `tests/golden/` (committed files that later versions must keep reading).
#[must_use]
pub fn golden(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden").join(relative)
}

/// How long the engine-thread tests wait for an event before failing.
pub const ENGINE_WAIT: Duration = Duration::from_secs(30);

/// A run of `steps` UniPC steps of the tiny random-weight model (`parity/t2v_hd20`) on a
/// 4 x 3 x 8 x 8 latent from seed 11, with the reference run's prompt embeddings.
///
/// # Panics
/// If the fixtures cannot be read: a test failure.
#[must_use]
pub fn tiny_run_request(steps: usize) -> RunRequest {
    let tensors =
        candle_core::safetensors::load(fixture("parity/sample_t2v_unipc.safetensors"), &Device::Cpu)
            .expect("fixture");
    let model =
        WanTransformer::load(&fixture("parity/t2v_hd20"), DType::F32, &Device::Cpu).expect("tiny model");
    RunRequest {
        model: Arc::new(model),
        conditioning: Arc::new(Conditioning {
            prompt_embeds: tensors["prompt_embeds"].clone(),
            negative_prompt_embeds: None,
            condition_latent: None,
        }),
        settings: SessionSettings {
            steps,
            shift: 3.0,
            scheduler: SchedulerKind::UniPc,
            guidance_scale: 1.0,
            capture: CaptureSpec::default(),
        },
        latent_shape: [4, 3, 8, 8],
        noise: NoiseSource::Seed(11),
        provenance: RunProvenance { model_source: "t2v_hd20".to_owned(), ..RunProvenance::default() },
        low_noise_expert: None,
    }
}

/// The next event of `engine`, past its state reports.
///
/// # Panics
/// If none arrives within [`ENGINE_WAIT`].
#[must_use]
pub fn next_event(engine: &EngineHandle) -> EngineEvent {
    loop {
        let message = engine.recv_timeout(ENGINE_WAIT).expect("an event from the engine");
        if !matches!(message.event, EngineEvent::State(_)) {
            return message.event;
        }
    }
}

/// What each fuzz target (`fuzz/fuzz_targets/`) runs on its input, shared with the test that
/// replays the committed regression inputs (`tests/fuzz_regressions.rs`), so that a crash the
/// fuzzer found stays fixed without a nightly toolchain. Each function must return, never
/// panic, whatever the bytes; errors are the expected outcome for almost every input.
pub mod fuzz_targets {
    use std::path::Path;

    use candle_core::Device;
    use stepscope_engine::model::WanConfig;
    use stepscope_engine::model::checkpoint::{expected_tensors, shards_from_index_text};
    use stepscope_engine::tensor_file::tensor_from_bytes;
    use stepscope_engine::trajectory::{Manifest, TrajectoryReader};

    /// A trajectory file: opened from memory, then every tensor read whole and by its first and
    /// last frame, the whole file verified and described.
    pub fn trajectory_reader(data: &[u8]) {
        let Ok(reader) = TrajectoryReader::from_bytes("fuzz.safetensors", data.to_vec()) else { return };
        let names: Vec<_> = reader.tensor_names().copied().collect();
        for name in &names {
            let _ = reader.load_values(name);
            let frames =
                reader.shape_of(name).and_then(|shape| shape.get(shape.len().saturating_sub(3)).copied());
            for frame_idx in [0, frames.unwrap_or(1).saturating_sub(1)] {
                let _ = reader.load_frame(name, frame_idx);
            }
        }
        let _ = reader.verify(|_| {});
        let _ = reader.describe();
    }

    /// A manifest's JSON text: parsed and checked as on open, then described.
    pub fn manifest(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(manifest) = Manifest::from_json(text, Path::new("fuzz.safetensors")) {
            let _ = manifest.to_string();
        }
    }

    /// A model folder's `config.json` (validated, then the checkpoint's expected tensors listed
    /// from it) and, the same text, its sharded checkpoint's index.
    pub fn model_config(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else { return };
        if let Ok(config) = WanConfig::from_json(text, Path::new("config.json")) {
            let _ = expected_tensors(&config);
        }
        let _ = shards_from_index_text(text, Path::new("."));
    }

    /// An input tensor file (noise, prompt embeddings): read as each rank the engine asks for.
    pub fn tensor_file(data: &[u8]) {
        for (name, rank) in [("noise", 4), ("prompt_embeds", 2), ("condition", 4)] {
            let _ = tensor_from_bytes(data, Path::new("input.safetensors"), name, rank, &Device::Cpu);
        }
    }
}
