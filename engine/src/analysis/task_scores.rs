//! How well the prediction solves a built-in task at each step: the task's rule-based scorer
//! applied to `x0_hat`, the clean video the model predicts at that step. Along the steps this is
//! the Chain-of-Steps curve: when (at which step) the answer appears.
use serde_json::{Map, Value};

use super::source::{AnalysisError, TensorSource};
use crate::tasks::{Score, TaskInstance, TaskKind, TaskParams, TaskVideo};
use crate::trajectory::{StepTensor, TaskInfo, TensorName};

/// The manifest's record of the task instance a run solves.
#[must_use]
pub fn task_info(instance: &TaskInstance) -> TaskInfo {
    let mut params = Map::new();
    params.insert("size".to_owned(), Value::from(instance.params.size));
    params.insert("frames".to_owned(), Value::from(instance.params.frames));
    TaskInfo { name: instance.kind.name().to_owned(), seed: instance.seed, params }
}

/// Regenerates the instance a manifest's [`TaskInfo`] names.
pub fn task_instance(info: &TaskInfo) -> Result<TaskInstance, AnalysisError> {
    let param = |key: &str| {
        info.params
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|value| usize::try_from(value).ok())
            .ok_or_else(|| AnalysisError::Task(format!("the task record has no whole-number `{key}`")))
    };
    let kind = TaskKind::from_name(&info.name).map_err(|err| AnalysisError::Task(err.to_string()))?;
    let params = TaskParams { size: param("size")?, frames: param("frames")? };
    kind.generate(info.seed, &params).map_err(|err| AnalysisError::Task(err.to_string()))
}

/// The score of `x0_hat` `[3, F, H, W]` at every step of `seed_idx` (`None` where the step is
/// not recorded or not computed yet).
pub fn task_scores(
    source: &dyn TensorSource,
    seed_idx: usize,
    instance: &TaskInstance,
) -> Result<Vec<Option<Score>>, AnalysisError> {
    let manifest = source.manifest();
    (0..manifest.schedule.steps)
        .map(|step_idx| {
            let Some(owner) = manifest.step_owner(seed_idx, step_idx) else { return Ok(None) };
            let name = TensorName::Step { seed_idx: owner, step_idx, kind: StepTensor::X0 };
            let tensor = match source.load_tensor(&name) {
                Ok(tensor) => tensor,
                Err(AnalysisError::Missing(_)) => return Ok(None),
                Err(err) => return Err(err),
            };
            let video = TaskVideo::from_tensor(&tensor)
                .map_err(|err| AnalysisError::Task(format!("{name}: {err}")))?;
            instance.score(&video).map(Some).map_err(|err| AnalysisError::Task(format!("{name}: {err}")))
        })
        .collect()
}
