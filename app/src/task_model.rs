//! A trained task model and its learned prompt for one task, as `eval`, `probe` and `ensemble`
//! load them.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use stepscope::viewer::live::builtin_model_dir;
use stepscope_engine::model::WanTransformer;
use stepscope_engine::tasks::TaskKind;
use stepscope_engine::training::checkpoint::{PROMPTS_FILE, load_prompts};

/// The model, its prompt `[1, L, text_dim]` for the task, and the task.
pub struct TaskModel {
    pub model: Arc<WanTransformer>,
    pub prompt: Tensor,
    pub kind: TaskKind,
    /// The folder it came from.
    pub dir: PathBuf,
}

/// Loads the model folder `dir` (the built-in model by default) on the CPU in f32, and its
/// learned prompt for `task`.
pub fn load_task_model(dir: Option<PathBuf>, task: &str) -> Result<TaskModel> {
    let device = Device::Cpu;
    let dir = dir.unwrap_or_else(builtin_model_dir);
    let model = WanTransformer::load(&dir, DType::F32, &device)
        .with_context(|| format!("loading the model from {}", dir.display()))?;
    let prompts_path = dir.join(PROMPTS_FILE);
    let mut prompts = load_prompts(&prompts_path, &device)?;
    let kind = TaskKind::from_name(task).context("--task")?;
    let prompt = prompts.remove(kind.name()).with_context(|| {
        format!(
            "{} has no prompt for {}: the model was not trained on it",
            prompts_path.display(),
            kind.name()
        )
    })?;
    Ok(TaskModel { model: Arc::new(model), prompt, kind, dir })
}

/// The sizes a command runs: those asked for, or the task's own default size.
pub fn sizes_or_default(kind: TaskKind, asked: &[usize]) -> Vec<usize> {
    if asked.is_empty() { vec![kind.default_params().size] } else { asked.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_without_sizes_runs_the_task_at_its_own_default_size() {
        assert_eq!(sizes_or_default(TaskKind::Maze, &[]), [5]);
        // Symmetry has no size 5 (it must be even): the maze's default would be an error.
        assert_eq!(sizes_or_default(TaskKind::Symmetry, &[]), [6]);
        assert_eq!(sizes_or_default(TaskKind::Gravity, &[4, 8]), [4, 8]);
    }
}
