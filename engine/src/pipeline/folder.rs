//! Reading a pipeline folder's index and scheduler config, and checking its parts are there.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::config::{MAX_CONFIG_BYTES, read_capped};
use crate::scheduler::SchedulerKind;

/// What is wrong with a pipeline folder, naming the file or part.
pub type PipelineError = crate::part_error::PartError;

/// The sampler a pipeline's scheduler config sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerSetting {
    pub kind: SchedulerKind,
    /// `flow_shift` (UniPC) or `shift` (Euler).
    pub shift: f64,
}

/// A Wan pipeline folder, its parts located and checked to exist.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineFolder {
    pub dir: PathBuf,
    /// `WanPipeline` or `WanImageToVideoPipeline`.
    pub class: String,
    pub transformer: PathBuf,
    /// Wan2.2 A14B's low-noise expert, switched to below `boundary_ratio`.
    pub transformer_2: Option<PathBuf>,
    pub boundary_ratio: Option<f64>,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub vae: PathBuf,
    pub scheduler: SchedulerSetting,
    /// Wan2.2 TI2V's per-token timesteps (a clean first frame).
    pub expand_timesteps: bool,
}

const PIPELINES: [&str; 2] = ["WanPipeline", "WanImageToVideoPipeline"];

impl PipelineFolder {
    /// Reads `dir/model_index.json` and `dir/scheduler/scheduler_config.json` and checks that
    /// every part the index lists is a folder with a `config.json` (the tokenizer: a
    /// `tokenizer.json`).
    pub fn open(dir: &Path) -> Result<Self, PipelineError> {
        let index_path = dir.join("model_index.json");
        let index = read_json(&index_path, "the pipeline index")?;
        let invalid = |what: String| PipelineError::Config { path: index_path.clone(), what };
        let class = index.get("_class_name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !PIPELINES.contains(&class.as_str()) {
            return Err(invalid(format!(
                "`_class_name` is `{class}`; a Wan pipeline folder is a {} (is this a Wan `-Diffusers` folder?)",
                PIPELINES.join(" or ")
            )));
        }
        // A part is listed as `[library, class]`; `[null, null]` where the pipeline has none.
        let listed = |part: &str| {
            index
                .get(part)
                .and_then(Value::as_array)
                .and_then(|entry| entry.first())
                .is_some_and(|library| !library.is_null())
        };
        if listed("image_encoder") {
            return Err(invalid(
                "Wan2.1 image-to-video needs its CLIP image encoder (`image_encoder`), which Stepscope does not \
                 run yet; use a text-to-video pipeline or Wan2.2 TI2V"
                    .to_owned(),
            ));
        }
        let part = |name: &str, file: &str| -> Result<PathBuf, PipelineError> {
            let path = dir.join(name);
            if !path.join(file).is_file() {
                return Err(PipelineError::Config {
                    path: path.clone(),
                    what: format!("the pipeline's `{name}` has no {file} (model_index.json lists the part)"),
                });
            }
            Ok(path)
        };
        for name in ["transformer", "text_encoder", "tokenizer", "vae", "scheduler"] {
            if !listed(name) {
                return Err(invalid(format!(
                    "the index does not list `{name}`, which every Wan pipeline has"
                )));
            }
        }
        let transformer_2 =
            if listed("transformer_2") { Some(part("transformer_2", "config.json")?) } else { None };
        let boundary_ratio = index.get("boundary_ratio").and_then(Value::as_f64);
        if transformer_2.is_some() != boundary_ratio.is_some() {
            return Err(invalid(
                "`transformer_2` and `boundary_ratio` come together (Wan2.2 A14B)".to_owned(),
            ));
        }
        let scheduler_dir = part("scheduler", "scheduler_config.json")?;
        Ok(Self {
            dir: dir.to_owned(),
            class,
            transformer: part("transformer", "config.json")?,
            transformer_2,
            boundary_ratio,
            text_encoder: part("text_encoder", "config.json")?,
            tokenizer: part("tokenizer", "tokenizer.json")?,
            vae: part("vae", "config.json")?,
            scheduler: scheduler_setting(&scheduler_dir.join("scheduler_config.json"))?,
            expand_timesteps: index.get("expand_timesteps").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

fn read_json(path: &Path, what: &'static str) -> Result<Value, PipelineError> {
    let text = read_capped(path, MAX_CONFIG_BYTES).map_err(|cause| PipelineError::Read {
        path: path.to_owned(),
        what,
        cause,
    })?;
    serde_json::from_str(&text).map_err(|err| PipelineError::Config {
        path: path.to_owned(),
        what: format!("not valid JSON: {err}"),
    })
}

/// The sampler `scheduler_config.json` sets: UniPC with `flow_shift`, or flow-matching Euler
/// with `shift`.
fn scheduler_setting(path: &Path) -> Result<SchedulerSetting, PipelineError> {
    let config = read_json(path, "the scheduler config")?;
    let invalid = |what: String| PipelineError::Config { path: path.to_owned(), what };
    let number = |key: &str, default: f64| config.get(key).and_then(Value::as_f64).unwrap_or(default);
    let setting = match config.get("_class_name").and_then(Value::as_str).unwrap_or_default() {
        "UniPCMultistepScheduler" => {
            if config.get("use_flow_sigmas").and_then(Value::as_bool) != Some(true)
                || config.get("prediction_type").and_then(Value::as_str) != Some("flow_prediction")
            {
                return Err(invalid(
                    "UniPC must run with use_flow_sigmas and flow_prediction, as Wan's pipelines ship it"
                        .to_owned(),
                ));
            }
            SchedulerSetting { kind: SchedulerKind::UniPc, shift: number("flow_shift", 1.0) }
        }
        "FlowMatchEulerDiscreteScheduler" => {
            SchedulerSetting { kind: SchedulerKind::Euler, shift: number("shift", 1.0) }
        }
        other => {
            return Err(invalid(format!(
                "the scheduler `{other}` is not one Stepscope runs (UniPC or flow-matching Euler)"
            )));
        }
    };
    if !(setting.shift.is_finite() && setting.shift > 0.0) {
        return Err(invalid(format!("the shift {} is not a positive number", setting.shift)));
    }
    Ok(setting)
}
