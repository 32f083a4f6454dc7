//! What a training run is: the model's shape, the task mix and the optimiser's settings.
//! Saved inside every checkpoint, so a resumed run continues with exactly the same recipe.
use serde::{Deserialize, Serialize};

use super::error::{Result, TrainingError};
use crate::model::WanConfig;
use crate::tasks::{TaskKind, TaskParams};

/// One task in the training mix: its name, the sizes drawn (uniformly, inclusive) and frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMix {
    /// [`TaskKind::name`].
    pub task: String,
    pub min_size: usize,
    pub max_size: usize,
    pub frames: usize,
}

impl TaskMix {
    /// The recipe's default for `kind`: mazes of 4..=6 cells, the other tasks at their default
    /// size; 5 frames each.
    #[must_use]
    pub fn default_for(kind: TaskKind) -> Self {
        let params = kind.default_params();
        let (min_size, max_size) = match kind {
            TaskKind::Maze => (4, 6),
            _ => (params.size, params.size),
        };
        Self { task: kind.name().to_owned(), min_size, max_size, frames: params.frames }
    }

    pub fn kind(&self) -> Result<TaskKind> {
        Ok(TaskKind::from_name(&self.task)?)
    }

    /// The parameters of one size of this task.
    #[must_use]
    pub fn params(&self, size: usize) -> TaskParams {
        TaskParams { size, frames: self.frames }
    }
}

/// The whole recipe of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The transformer (pixel space: 3 channels in and out, 1x2x2 patches).
    pub model: WanConfig,
    /// L, tokens of each task's learned prompt embedding `[1, L, text_dim]`.
    pub prompt_tokens: usize,
    pub tasks: Vec<TaskMix>,
    /// Instances per optimiser step (all of one task and size).
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Steps of linear learning-rate warm-up from 0.
    pub warmup_steps: u64,
    /// `AdamW`'s decoupled weight decay, applied to weight matrices only.
    pub weight_decay: f64,
    /// Gradients are scaled down to this global L2 norm when above it.
    pub grad_clip: f64,
    /// Decay of the exponential moving average of the weights (the exported model).
    pub ema_decay: f64,
    /// Seeds the weight initialisation and the stream of training instances and noise.
    pub seed: u64,
}

impl TrainConfig {
    /// The recipe of the built-in model for `tasks`: 8 layers of width 128 (4 heads x 32),
    /// FFN 512, text width 32 with 4 prompt tokens (about 2.3 M parameters).
    #[must_use]
    pub fn recipe(tasks: &[TaskKind]) -> Self {
        Self {
            model: pixel_wan(8, 4, 32, 512, 32),
            prompt_tokens: 4,
            tasks: tasks.iter().map(|&kind| TaskMix::default_for(kind)).collect(),
            batch_size: 32,
            learning_rate: 1e-3,
            warmup_steps: 200,
            weight_decay: 0.01,
            grad_clip: 1.0,
            ema_decay: 0.999,
            seed: 0,
        }
    }

    /// Checks the recipe before anything is built.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: String| Err(TrainingError::Setup(what));
        self.model.validate()?;
        let m = &self.model;
        if m.in_channels != 3 || m.out_channels() != 3 || m.patch_size != [1, 2, 2] {
            return invalid("the model must be pixel-space: 3 channels in and out, patch 1x2x2".to_owned());
        }
        if self.tasks.is_empty() {
            return invalid("no tasks to train on".to_owned());
        }
        for mix in &self.tasks {
            let kind = mix.kind()?;
            if mix.min_size > mix.max_size
                || !kind.size_range().contains(&mix.min_size)
                || !kind.size_range().contains(&mix.max_size)
            {
                return invalid(format!(
                    "{} sizes {}..={} are not within {:?}",
                    mix.task,
                    mix.min_size,
                    mix.max_size,
                    kind.size_range()
                ));
            }
            if mix.frames < 2 {
                return invalid(format!("{} needs at least 2 frames", mix.task));
            }
        }
        if self.prompt_tokens == 0 || self.batch_size == 0 {
            return invalid("prompt_tokens and batch_size must be positive".to_owned());
        }
        let positive = [self.learning_rate, self.grad_clip];
        if positive.iter().any(|v| !(v.is_finite() && *v > 0.0))
            || !(0.0..1.0).contains(&self.ema_decay)
            || !(0.0..1.0).contains(&self.weight_decay)
        {
            return invalid(
                "learning_rate and grad_clip must be positive, ema_decay and weight_decay in [0, 1)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// A pixel-space Wan config: 3 channels, 1x2x2 patches (one token per task cell).
#[must_use]
pub fn pixel_wan(layers: usize, heads: usize, head_dim: usize, ffn_dim: usize, text_dim: usize) -> WanConfig {
    WanConfig {
        patch_size: [1, 2, 2],
        num_attention_heads: heads,
        attention_head_dim: head_dim,
        in_channels: 3,
        out_channels: Some(3),
        text_dim,
        ffn_dim,
        num_layers: layers,
        ..WanConfig::default()
    }
}
