//! `stepscope eval`: solve rates of a trained model on held-out task instances, sampled with
//! the engine's sampler and scored by the tasks' rule-based scorers.
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use stepscope_engine::model::WanTransformer;
use stepscope_engine::tasks::{TaskKind, TaskParams};
use stepscope_engine::training::checkpoint::{PROMPTS_FILE, load_prompts};
use stepscope_engine::training::{SamplerSettings, evaluate};

use crate::cli::EvalArgs;

pub fn run(args: &EvalArgs) -> Result<()> {
    let device = Device::Cpu;
    let model = WanTransformer::load(&args.model, DType::F32, &device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let prompts_path = args.model.join(PROMPTS_FILE);
    let prompts = load_prompts(Path::new(&prompts_path), &device)?;
    let kind = TaskKind::from_name(&args.task).context("--task")?;
    let prompt = prompts
        .get(kind.name())
        .with_context(|| format!("{} has no prompt for {}", prompts_path.display(), kind.name()))?;
    let model = Arc::new(model);
    let sampler = SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler };
    println!("task,size,frames,count,solved,solve_rate,mean_score");
    for &size in &args.size {
        let params = TaskParams { size, frames: args.frames };
        let result = evaluate(&model, prompt, kind, params, 0..args.count, sampler)
            .with_context(|| format!("evaluating {} size {size}", kind.name()))?;
        println!(
            "{},{size},{},{},{},{:.4},{:.4}",
            kind.name(),
            args.frames,
            result.count,
            result.solved,
            result.solve_rate(),
            result.mean_score
        );
    }
    Ok(())
}
