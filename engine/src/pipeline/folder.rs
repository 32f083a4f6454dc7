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
    /// Wan2.2 TI2V's per-token timesteps (a clean first frame): the pipeline takes an image.
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
        let expand_timesteps = index.get("expand_timesteps").and_then(Value::as_bool).unwrap_or(false);
        if class == "WanImageToVideoPipeline" && !expand_timesteps {
            return Err(invalid(
                "this image-to-video pipeline (Wan2.2 A14B I2V) gives the transformer the image through extra \
                 input channels, which Stepscope does not run yet; Wan2.2 TI2V (`expand_timesteps`) and the \
                 text-to-video pipelines run"
                    .to_owned(),
            ));
        }
        let scheduler_dir = part("scheduler", "scheduler_config.json")?;
        let folder = Self {
            dir: dir.to_owned(),
            class,
            transformer: part("transformer", "config.json")?,
            transformer_2,
            boundary_ratio,
            text_encoder: part("text_encoder", "config.json")?,
            tokenizer: part("tokenizer", "tokenizer.json")?,
            vae: part("vae", "config.json")?,
            scheduler: scheduler_setting(&scheduler_dir.join("scheduler_config.json"))?,
            expand_timesteps,
        };
        folder.check_widths()?;
        Ok(folder)
    }

    /// The parts fit together: the text encoder's width is the transformer's text width, and
    /// the VAE's latent channels are the transformer's output channels (configs only; nothing
    /// is loaded).
    /// Whether the pipeline runs from an image (its VAE latent the clean first latent frame).
    #[must_use]
    pub fn takes_image(&self) -> bool {
        self.expand_timesteps
    }

    /// Whether the pipeline runs only from an image (`WanImageToVideoPipeline`).
    #[must_use]
    pub fn needs_image(&self) -> bool {
        self.class == "WanImageToVideoPipeline"
    }

    fn check_widths(&self) -> Result<(), PipelineError> {
        let number = |config: &Value, key: &str| config.get(key).and_then(Value::as_u64);
        let transformer = read_json(&self.transformer.join("config.json"), "the transformer's config")?;
        let encoder = read_json(&self.text_encoder.join("config.json"), "the text encoder's config")?;
        let vae = read_json(&self.vae.join("config.json"), "the VAE's config")?;
        let out_channels =
            number(&transformer, "out_channels").or_else(|| number(&transformer, "in_channels"));
        let pairs = [
            (
                "the text encoder's d_model",
                number(&encoder, "d_model"),
                "the transformer's text_dim",
                number(&transformer, "text_dim"),
                &self.text_encoder,
            ),
            (
                "the VAE's z_dim",
                number(&vae, "z_dim"),
                "the transformer's out_channels",
                out_channels,
                &self.vae,
            ),
        ];
        for (part, value, other, expected, dir) in pairs {
            if let (Some(value), Some(expected)) = (value, expected)
                && value != expected
            {
                return Err(PipelineError::Config {
                    path: dir.join("config.json"),
                    what: format!(
                        "{part} is {value} but {other} is {expected}: the parts do not belong together"
                    ),
                });
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wan_pipeline_tiny")
    }

    /// A copy of the tiny pipeline folder's configs (no weights), with `edit` applied to the
    /// JSON file `file` of it.
    fn copy_with(file: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (part, name) in [
            ("", "model_index.json"),
            ("scheduler", "scheduler_config.json"),
            ("transformer", "config.json"),
            ("text_encoder", "config.json"),
            ("tokenizer", "tokenizer.json"),
            ("vae", "config.json"),
        ] {
            std::fs::create_dir_all(dir.path().join(part)).expect("a part");
            std::fs::copy(fixture().join(part).join(name), dir.path().join(part).join(name)).expect("a copy");
        }
        let path = dir.path().join(file);
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        edit(&mut json);
        std::fs::write(&path, json.to_string()).expect("write");
        dir
    }

    #[test]
    fn the_tiny_pipeline_folder_opens_with_its_scheduler() {
        let folder = PipelineFolder::open(&fixture()).expect("the fixture opens");
        assert_eq!(folder.class, "WanPipeline");
        assert_eq!(folder.scheduler, SchedulerSetting { kind: SchedulerKind::UniPc, shift: 3.0 });
        assert!(folder.transformer_2.is_none() && !folder.expand_timesteps);
    }

    #[test]
    fn parts_that_do_not_belong_together_are_named() {
        let dir = copy_with("vae/config.json", |vae| vae["z_dim"] = 48.into());
        let err = PipelineFolder::open(dir.path()).expect_err("mismatched VAE").to_string();
        assert!(err.contains("the VAE's z_dim is 48 but the transformer's out_channels is 16"), "{err}");
        let dir = copy_with("text_encoder/config.json", |encoder| encoder["d_model"] = 64.into());
        let err = PipelineFolder::open(dir.path()).expect_err("mismatched encoder").to_string();
        assert!(err.contains("d_model is 64 but the transformer's text_dim is 32"), "{err}");
    }

    #[test]
    fn a_missing_part_or_an_unsupported_pipeline_is_named() {
        let dir = copy_with("model_index.json", |_| {});
        std::fs::remove_file(dir.path().join("vae/config.json")).expect("remove");
        let err = PipelineFolder::open(dir.path()).expect_err("no VAE").to_string();
        assert!(err.contains("the pipeline's `vae` has no config.json"), "{err}");
        let dir = copy_with("model_index.json", |index| {
            index["image_encoder"] = serde_json::json!(["transformers", "CLIPVisionModel"]);
        });
        let err = PipelineFolder::open(dir.path()).expect_err("Wan2.1 I2V").to_string();
        assert!(err.contains("CLIP image encoder"), "{err}");
        let dir = copy_with("model_index.json", |index| {
            index["_class_name"] = "WanImageToVideoPipeline".into();
            index["expand_timesteps"] = false.into();
        });
        let err = PipelineFolder::open(dir.path()).expect_err("Wan2.2 A14B I2V").to_string();
        assert!(err.contains("extra input channels"), "{err}");
        let dir = copy_with("model_index.json", |index| {
            index["_class_name"] = "WanImageToVideoPipeline".into();
            index["expand_timesteps"] = true.into();
        });
        let folder = PipelineFolder::open(dir.path()).expect("Wan2.2 TI2V image-to-video opens");
        assert!(folder.takes_image() && folder.needs_image());
        let dir = copy_with("scheduler/scheduler_config.json", |config| {
            config["_class_name"] = "DDIMScheduler".into();
        });
        let err = PipelineFolder::open(dir.path()).expect_err("another scheduler").to_string();
        assert!(err.contains("`DDIMScheduler` is not one Stepscope runs"), "{err}");
    }
}
