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

/// The step from which the prediction stays solved to the end: the first step `k` such that
/// every recorded step from `k` on is solved and the last step is recorded and solved. `None`
/// when the run ends unsolved (or has not reached its last step).
#[must_use]
pub fn commit_step(scores: &[Option<Score>]) -> Option<usize> {
    if !scores.last()?.as_ref()?.solved {
        return None;
    }
    let unsolved_before = scores.iter().rposition(|score| score.as_ref().is_some_and(|score| !score.solved));
    let first_solved_after = |start: usize| (start..scores.len()).find(|&step| scores[step].is_some());
    first_solved_after(unsolved_before.map_or(0, |step| step + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded step, solved or not.
    fn step(solved: bool) -> Score {
        Score { value: if solved { 1.0 } else { 0.5 }, solved, parts: Vec::new(), checks: Vec::new() }
    }

    #[test]
    fn the_commit_step_is_where_the_answer_stays_solved() {
        let run =
            [Some(step(false)), Some(step(true)), Some(step(false)), Some(step(true)), Some(step(true))];
        assert_eq!(commit_step(&run), Some(3));
        let always = [Some(step(true)), Some(step(true))];
        assert_eq!(commit_step(&always), Some(0));
        let lost = [Some(step(true)), Some(step(false))];
        assert_eq!(commit_step(&lost), None);
        // Steps not recorded are skipped over; an unfinished run has not committed.
        let gaps = [Some(step(false)), None, Some(step(true)), Some(step(true))];
        assert_eq!(commit_step(&gaps), Some(2));
        assert_eq!(commit_step(&[Some(step(true)), None]), None);
        assert_eq!(commit_step(&[]), None);
    }

    #[test]
    fn a_task_record_round_trips_and_bad_records_are_errors() {
        let instance = TaskKind::Maze.generate(3, &TaskParams { size: 4, frames: 3 }).unwrap();
        let again = task_instance(&task_info(&instance)).unwrap();
        assert_eq!(again, instance);
        let mut info = task_info(&instance);
        info.params.remove("size");
        assert!(task_instance(&info).unwrap_err().to_string().contains("`size`"));
        info.name = "sudoku".to_owned();
        assert!(task_instance(&info).is_err());
    }
}
