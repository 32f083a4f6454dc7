//! Training checkpoints and the exported model, each file written atomically.
//!
//! A run's folder holds:
//! - `checkpoint.safetensors`: everything a resumed run needs: tensors `param/{key}`,
//!   `adam_m/{key}`, `adam_v/{key}`, `ema/{key}` (keys as in [`super::params::Parameters`]) and,
//!   in the header metadata under [`STATE_KEY`], a JSON [`TrainState`] (step, random state,
//!   recipe);
//! - `model/`: the EMA weights as a diffusers `WanTransformer3DModel` folder (`config.json`,
//!   `diffusion_pytorch_model.safetensors`) that `WanTransformer::load` opens, and
//!   `prompts.safetensors`, one `[1, L, text_dim]` prompt embedding per task name.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::error::{Result, TrainingError};
use super::params::split_prompts;
use super::stream::{TRAINING_STREAM_FILE, TrainingStream};
use crate::model::WanConfig;
use crate::trajectory::atomic::replace_file_with;

/// Header metadata key of the [`TrainState`] JSON.
pub const STATE_KEY: &str = "stepscope.training";
/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const MODEL_DIR: &str = "model";
pub const PROMPTS_FILE: &str = "prompts.safetensors";

/// The scalar state of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub version: u32,
    /// Optimiser steps taken.
    pub step_idx: u64,
    /// Instances seen.
    pub samples: u64,
    /// The data/noise stream's `splitmix64` state.
    pub rng_state: u64,
    pub adam_updates: u64,
    pub ema_updates: u64,
    pub config: TrainConfig,
}

/// A checkpoint's tensors, grouped.
#[derive(Debug, Clone, Default)]
pub struct CheckpointTensors {
    pub params: BTreeMap<String, Tensor>,
    pub adam_m: BTreeMap<String, Tensor>,
    pub adam_v: BTreeMap<String, Tensor>,
    pub ema: BTreeMap<String, Tensor>,
}

const GROUPS: [&str; 4] = ["param", "adam_m", "adam_v", "ema"];

/// Writes `dir/checkpoint.safetensors` atomically.
pub fn save_checkpoint(dir: &Path, state: &TrainState, tensors: &CheckpointTensors) -> Result<()> {
    let mut named: Vec<(String, &Tensor)> = Vec::new();
    for (group, map) in
        GROUPS.into_iter().zip([&tensors.params, &tensors.adam_m, &tensors.adam_v, &tensors.ema])
    {
        named.extend(map.iter().map(|(key, tensor)| (format!("{group}/{key}"), tensor)));
    }
    let json = serde_json::to_string(state)
        .map_err(|e| TrainingError::Setup(format!("cannot encode the training state: {e}")))?;
    write_safetensors(&dir.join(CHECKPOINT_FILE), named, Some(HashMap::from([(STATE_KEY.to_owned(), json)])))
}

/// Reads `dir/checkpoint.safetensors` onto `device`.
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<(TrainState, CheckpointTensors)> {
    let path = dir.join(CHECKPOINT_FILE);
    let bad = |what: String| TrainingError::Checkpoint { path: path.clone(), what };
    let bytes = std::fs::read(&path).map_err(|source| TrainingError::Io {
        path: path.clone(),
        action: "read the checkpoint",
        cause: source,
    })?;
    let file =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not safetensors: {e}")))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("bad header: {e}")))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .ok_or_else(|| bad(format!("the header has no `{STATE_KEY}` metadata")))?;
    let state: TrainState =
        serde_json::from_str(json).map_err(|e| bad(format!("bad training state: {e}")))?;
    if state.version != CHECKPOINT_VERSION {
        return Err(bad(format!("layout version {} (this build reads {CHECKPOINT_VERSION})", state.version)));
    }
    let mut tensors = CheckpointTensors::default();
    for (name, view) in file.tensors() {
        let Some((group, key)) = name.split_once('/') else {
            return Err(bad(format!("unexpected tensor `{name}`")));
        };
        let map = match group {
            "param" => &mut tensors.params,
            "adam_m" => &mut tensors.adam_m,
            "adam_v" => &mut tensors.adam_v,
            "ema" => &mut tensors.ema,
            _ => return Err(bad(format!("unexpected tensor `{name}`"))),
        };
        map.insert(key.to_owned(), view.load(device)?);
    }
    Ok((state, tensors))
}

/// Exports `weights` (model keys and `prompts.{task}`) as `dir/model/`: diffusers config and
/// weights, the prompt embeddings and `training_stream.json`. Returns the model folder.
pub fn export_model(dir: &Path, config: &WanConfig, weights: &BTreeMap<String, Tensor>) -> Result<PathBuf> {
    let model_dir = dir.join(MODEL_DIR);
    std::fs::create_dir_all(&model_dir).map_err(|source| TrainingError::Io {
        path: model_dir.clone(),
        action: "create the folder",
        cause: source,
    })?;
    let (model, prompts) = split_prompts(weights);
    let mut json = serde_json::to_value(config)
        .map_err(|e| TrainingError::Setup(format!("cannot encode the model config: {e}")))?;
    if let Some(object) = json.as_object_mut() {
        object.insert("_class_name".to_owned(), "WanTransformer3DModel".into());
        object.insert("_diffusers_version".to_owned(), "0.42.1".into());
    }
    let text = serde_json::to_string_pretty(&json)
        .map_err(|e| TrainingError::Setup(format!("cannot encode the model config: {e}")))?;
    let config_path = model_dir.join("config.json");
    replace_file_with(&config_path, text.as_bytes())?;
    let weights_path = model_dir.join("diffusion_pytorch_model.safetensors");
    write_safetensors(&weights_path, model.iter().map(|(k, t)| (k.clone(), t)).collect(), None)?;
    write_safetensors(
        &model_dir.join(PROMPTS_FILE),
        prompts.iter().map(|(k, t)| (k.clone(), t)).collect(),
        None,
    )?;
    // This trainer draws training puzzles only, from random seeds: no stream to replay.
    let stream = TrainingStream {
        streams: Vec::new(),
        note: "stepscope train: every batch drew training puzzles only (TaskKind::generate_for_training)"
            .to_owned(),
    };
    let text = serde_json::to_string_pretty(&stream)
        .map_err(|e| TrainingError::Setup(format!("cannot encode the training stream: {e}")))?;
    replace_file_with(&model_dir.join(TRAINING_STREAM_FILE), text.as_bytes())?;
    Ok(model_dir)
}

/// Reads a `prompts.safetensors`: task name -> `[1, L, text_dim]`.
pub fn load_prompts(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let bad = |what: String| TrainingError::Checkpoint { path: path.to_owned(), what };
    let bytes = std::fs::read(path).map_err(|source| TrainingError::Io {
        path: path.to_owned(),
        action: "read the prompts",
        cause: source,
    })?;
    let file =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not safetensors: {e}")))?;
    let mut prompts = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.shape().len() != 3 || view.shape()[0] != 1 {
            return Err(bad(format!(
                "prompt `{name}` has shape {:?}, expected [1, L, text_dim]",
                view.shape()
            )));
        }
        prompts.insert(name, view.load(device)?);
    }
    Ok(prompts)
}

pub(super) fn write_safetensors(
    path: &Path,
    named: Vec<(String, &Tensor)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes = safetensors::serialize(named, metadata)
        .map_err(|e| TrainingError::Setup(format!("cannot encode {}: {e}", path.display())))?;
    replace_file_with(path, &bytes)?;
    Ok(())
}
