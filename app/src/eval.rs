//! `stepscope eval`: solve rates of a trained model on held-out task instances, sampled with
//! the engine's sampler and scored by the tasks' rule-based scorers. Prints one CSV row per size.

use anyhow::{Context, Result};
use stepscope_engine::tasks::TaskParams;
use stepscope_engine::training::{EvalPlan, SamplerSettings, evaluate};

use crate::cli::EvalArgs;
use crate::progress::progress_bar;
use crate::task_model::{TaskModel, load_task_model};

pub fn run(args: &EvalArgs) -> Result<()> {
    let TaskModel { model, prompt, kind, .. } = load_task_model(args.model.clone(), &args.task)?;
    let prompt = &prompt;
    let sampler = SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler };
    let seeds = args.seed_offset..args.seed_offset.saturating_add(args.instances);
    let plans: Vec<EvalPlan> = args
        .size
        .iter()
        .map(|&size| EvalPlan {
            task: kind,
            params: TaskParams { size, frames: args.frames },
            seeds: seeds.clone(),
            noise_seeds: args.seeds,
            sampler,
        })
        .collect();
    let total = plans.iter().map(EvalPlan::samples).sum();
    let bar = progress_bar(args.quiet, total, 0, "samples");
    println!(
        "task,size,frames,instances,seed_offset,noise_seeds,samples,solved,solve_rate,any_seed_rate,mean_score"
    );
    for plan in &plans {
        let size = plan.params.size;
        bar.set_message(format!("{} {size}", kind.name()));
        let result = evaluate(&model, prompt, plan, &mut || bar.inc(1))
            .with_context(|| format!("evaluating {} size {size}", kind.name()))?;
        bar.suspend(|| {
            println!(
                "{},{size},{},{},{},{},{},{},{:.4},{:.4},{:.4}",
                kind.name(),
                args.frames,
                result.count,
                args.seed_offset,
                args.seeds,
                result.samples,
                result.solved,
                result.solve_rate(),
                result.any_seed_rate(),
                result.mean_score
            );
        });
    }
    bar.finish_and_clear();
    Ok(())
}
