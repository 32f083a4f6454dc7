//! Probe results on disk: a small safetensors file any safetensors reader opens.
//!
//! Tensors: `accuracy` and `balanced_accuracy`, f32 `[steps, layers]`. Header metadata under
//! [`PROBE_KEY`]: a JSON [`ProbeRecord`] saying what was probed (task, sizes, seeds, sampler,
//! frame, ridge, model) and the chance level and token counts.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::probe::ProbeResult;
use crate::trajectory::TrajectoryError;
use crate::trajectory::atomic::replace_file_with;

/// Header metadata key of the [`ProbeRecord`].
pub const PROBE_KEY: &str = "stepscope.probe";
/// Version of this layout.
pub const PROBE_VERSION: u32 = 1;
/// Probe files are tiny; anything larger is not one.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// What a probe result file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRecord {
    pub version: u32,
    pub task: String,
    pub size: usize,
    pub frames: usize,
    /// The video frame whose tokens were probed.
    pub frame: usize,
    /// The span `[first, last + 1)` of the instance seeds the probes were fitted on, and tested on.
    pub train_seeds: [u64; 2],
    pub test_seeds: [u64; 2],
    /// Where the instances came from: `held-out` (distinct held-out puzzles) or `all` (every seed
    /// of the spans); empty in files written before the split existed (every seed of the spans).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub split: String,
    /// The seeds fitted on and tested on, where the spans do not say (held-out instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train_instances: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_instances: Vec<u64>,
    pub scheduler: String,
    pub sampler_steps: usize,
    pub shift: f64,
    pub ridge: f64,
    pub model: String,
    pub steps: usize,
    pub layers: usize,
    pub chance: f64,
    pub train_tokens: usize,
    pub test_tokens: usize,
}

/// Why a probe file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFileError {
    #[error(transparent)]
    Io(#[from] TrajectoryError),
    #[error("{path}: {what}")]
    Invalid { path: String, what: String },
}

/// Writes `result` with `record` to `path`, atomically.
pub fn write_probe_file(
    path: &Path,
    record: &ProbeRecord,
    result: &ProbeResult,
) -> Result<(), ProbeFileError> {
    let invalid = |what: String| ProbeFileError::Invalid { path: path.display().to_string(), what };
    if (record.steps, record.layers) != (result.steps, result.layers) {
        return Err(invalid(format!(
            "the record says {} steps x {} layers, the result holds {} x {}",
            record.steps, record.layers, result.steps, result.layers
        )));
    }
    let grid = |values: &[f64]| {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_vec(values, (result.steps, result.layers), &Device::Cpu)
            .map_err(|err| invalid(err.to_string()))
    };
    let accuracy = grid(&result.accuracy)?;
    let balanced = grid(&result.balanced_accuracy)?;
    let vector = |values: &[f64]| {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_vec(values.clone(), values.len(), &Device::Cpu).map_err(|err| invalid(err.to_string()))
    };
    if !result.x0_balanced_accuracy.is_empty() && result.x0_balanced_accuracy.len() != result.steps {
        return Err(invalid(format!(
            "{} x0_hat readout values for {} steps",
            result.x0_balanced_accuracy.len(),
            result.steps
        )));
    }
    let layout = result.layout_balanced_accuracy.map(|value| vector(&[value])).transpose()?;
    let readout = (!result.x0_balanced_accuracy.is_empty())
        .then(|| vector(&result.x0_balanced_accuracy))
        .transpose()?;
    let json = serde_json::to_string(record).map_err(|err| invalid(err.to_string()))?;
    let mut named = vec![("accuracy".to_owned(), &accuracy), ("balanced_accuracy".to_owned(), &balanced)];
    if let Some(layout) = &layout {
        named.push((LAYOUT_BASELINE.to_owned(), layout));
    }
    if let Some(readout) = &readout {
        named.push((X0_BASELINE.to_owned(), readout));
    }
    let bytes = safetensors::serialize(named, Some(HashMap::from([(PROBE_KEY.to_owned(), json)])))
        .map_err(|err| invalid(err.to_string()))?;
    replace_file_with(path, &bytes)?;
    Ok(())
}

/// Whether `path` is a probe result: its safetensors header carries [`PROBE_KEY`]. Reads the
/// header only (a trajectory file can be gigabytes); any failure means no.
#[must_use]
pub fn is_probe_file(path: &Path) -> bool {
    use std::io::Read as _;
    const MAX_HEADER: u64 = 1 << 20;
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let mut len = [0u8; 8];
    if file.read_exact(&mut len).is_err() {
        return false;
    }
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return false;
    }
    let mut header = Vec::new();
    if file.take(len).read_to_end(&mut header).is_err() {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(&header)
        .ok()
        .and_then(|json| json.get("__metadata__")?.get(PROBE_KEY).map(|_| ()))
        .is_some()
}

/// Reads a probe file: its record and result, checked against each other.
pub fn read_probe_file(path: &Path) -> Result<(ProbeRecord, ProbeResult), ProbeFileError> {
    let invalid = |what: String| ProbeFileError::Invalid { path: path.display().to_string(), what };
    let io = |action, source| TrajectoryError::Io { path: path.to_owned(), action, cause: source };
    let size = std::fs::metadata(path).map_err(|source| io("read the size of", source))?.len();
    if size > MAX_FILE_BYTES {
        return Err(invalid(format!("{size} bytes is too large for a probe result")));
    }
    let bytes = std::fs::read(path).map_err(|source| io("read", source))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|err| invalid(format!("not a safetensors file: {err}")))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|meta| meta.get(PROBE_KEY))
        .ok_or_else(|| invalid(format!("no `{PROBE_KEY}` metadata: not a probe result")))?;
    let record: ProbeRecord =
        serde_json::from_str(json).map_err(|err| invalid(format!("the probe record: {err}")))?;
    if record.version != PROBE_VERSION {
        return Err(invalid(format!(
            "probe format version {} (this build reads {PROBE_VERSION})",
            record.version
        )));
    }
    let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(|err| invalid(err.to_string()))?;
    let grid = |name: &str| -> Result<Vec<f64>, ProbeFileError> {
        let view = tensors.tensor(name).map_err(|_| invalid(format!("no `{name}` tensor")))?;
        if view.shape() != [record.steps, record.layers] || view.dtype() != safetensors::Dtype::F32 {
            return Err(invalid(format!(
                "`{name}` is {:?} {:?}, the record says f32 [{}, {}]",
                view.dtype(),
                view.shape(),
                record.steps,
                record.layers
            )));
        }
        Ok(f32_values(&view))
    };
    // The baselines, absent from files written before they existed.
    let vector = |name: &str, len: usize| -> Result<Option<Vec<f64>>, ProbeFileError> {
        let Ok(view) = tensors.tensor(name) else { return Ok(None) };
        if view.shape() != [len] || view.dtype() != safetensors::Dtype::F32 {
            return Err(invalid(format!(
                "`{name}` is {:?} {:?}, expected f32 [{len}]",
                view.dtype(),
                view.shape()
            )));
        }
        Ok(Some(f32_values(&view)))
    };
    let result = ProbeResult {
        steps: record.steps,
        layers: record.layers,
        accuracy: grid("accuracy")?,
        balanced_accuracy: grid("balanced_accuracy")?,
        chance: record.chance,
        train_tokens: record.train_tokens,
        test_tokens: record.test_tokens,
        layout_balanced_accuracy: vector(LAYOUT_BASELINE, 1)?.map(|values| values[0]),
        x0_balanced_accuracy: vector(X0_BASELINE, record.steps)?.unwrap_or_default(),
    };
    Ok((record, result))
}

/// The values of an f32 tensor view, widened.
fn f32_values(view: &safetensors::tensor::TensorView<'_>) -> Vec<f64> {
    view.data().chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect()
}

/// The tensor holding the layout baseline's balanced accuracy, `[1]`.
const LAYOUT_BASELINE: &str = "layout_balanced_accuracy";
/// The tensor holding the `x0_hat` readout baseline's balanced accuracy per step, `[steps]`.
const X0_BASELINE: &str = "x0_balanced_accuracy";

#[cfg(test)]
mod tests {
    use super::*;

    fn record(steps: usize, layers: usize) -> ProbeRecord {
        ProbeRecord {
            version: PROBE_VERSION,
            task: "maze".to_owned(),
            size: 5,
            frames: 5,
            frame: 4,
            train_seeds: [0, 8],
            test_seeds: [8, 12],
            split: String::new(),
            train_instances: Vec::new(),
            test_instances: Vec::new(),
            scheduler: "unipc".to_owned(),
            sampler_steps: steps,
            shift: 3.0,
            ridge: 1e-3,
            model: "synthetic".to_owned(),
            steps,
            layers,
            chance: 0.6,
            train_tokens: 288,
            test_tokens: 144,
        }
    }

    #[test]
    fn a_written_result_reads_back_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.safetensors");
        let result = ProbeResult {
            steps: 2,
            layers: 3,
            accuracy: vec![0.5, 0.625, 0.75, 0.875, 1.0, 0.25],
            balanced_accuracy: vec![0.5; 6],
            chance: 0.6,
            train_tokens: 288,
            test_tokens: 144,
            layout_balanced_accuracy: Some(0.625),
            x0_balanced_accuracy: vec![0.75, 0.875],
        };
        write_probe_file(&path, &record(2, 3), &result).unwrap();
        assert!(is_probe_file(&path));
        let (read_record, read_result) = read_probe_file(&path).unwrap();
        assert_eq!(read_record, record(2, 3));
        assert_eq!(read_result, result);
        assert_eq!(read_result.baseline_at(0), Some(0.75));
        // A result without baselines (as written before they existed) reads back without them.
        let plain = ProbeResult {
            layout_balanced_accuracy: None,
            x0_balanced_accuracy: Vec::new(),
            ..result.clone()
        };
        write_probe_file(&path, &record(2, 3), &plain).unwrap();
        assert_eq!(read_probe_file(&path).unwrap().1.baseline_at(1), None);

        // A record that disagrees with the tensors is refused on writing and on reading.
        let bad = dir.path().join("bad.safetensors");
        write_probe_file(&bad, &record(3, 3), &result).unwrap_err();
        assert!(!bad.exists());
        let transposed = Tensor::zeros((3, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let json = serde_json::to_string(&record(2, 3)).unwrap();
        let named = vec![("accuracy".to_owned(), &transposed), ("balanced_accuracy".to_owned(), &transposed)];
        let bytes =
            safetensors::serialize(named, Some(HashMap::from([(PROBE_KEY.to_owned(), json)]))).unwrap();
        std::fs::write(&bad, bytes).unwrap();
        let err = read_probe_file(&bad).unwrap_err().to_string();
        assert!(err.contains("the record says f32 [2, 3]"), "{err}");
        // Not a probe file at all.
        std::fs::write(&bad, b"not safetensors").unwrap();
        assert!(!is_probe_file(&bad));
        assert!(read_probe_file(&bad).unwrap_err().to_string().contains("not a safetensors file"));
    }
}
