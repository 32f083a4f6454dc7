//! `stepscope ensemble`: the training-free seed ensemble's solve rate next to a single seed's,
//! on the same held-out instances, with 95% Wilson intervals. One CSV row per size.

use anyhow::{Context, Result};
use stepscope_engine::analysis::{EnsemblePlan, run_ensemble, wilson_interval};
use stepscope_engine::tasks::TaskParams;
use stepscope_engine::training::SamplerSettings;

use crate::cli::EnsembleArgs;
use crate::instances::pick_instances;
use crate::progress::progress_bar;
use crate::task_model::{TaskModel, load_task_model, sizes_or_default};

pub fn run(args: &EnsembleArgs) -> Result<()> {
    let TaskModel { model, prompt, kind, dir } = load_task_model(args.model.clone(), &args.task)?;
    let prompt = &prompt;
    let sizes = sizes_or_default(kind, &args.size);
    let bar = progress_bar(args.quiet, args.instances * sizes.len() as u64, 0, "instances");
    println!(
        "task,size,split,instances,seeds,merge_steps,single_solved,single_rate,single_low,single_high,\
         ensemble_solved,ensemble_rate,ensemble_low,ensemble_high"
    );
    for size in sizes {
        bar.set_message(format!("{} {size}", kind.name()));
        let params = TaskParams { size, frames: args.frames };
        let picked = pick_instances(&dir, kind, &params, (args.split, args.seed_offset, args.instances))?;
        bar.suspend(|| eprintln!("{}", picked.summary));
        let plan = EnsemblePlan {
            task: kind,
            params,
            instances: picked.seeds,
            seeds: args.seeds,
            merge_steps: args.merge_steps,
            sampler: SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler },
        };
        let result = run_ensemble(&model, prompt, &plan, &mut || bar.inc(1))
            .with_context(|| format!("the ensemble on {} size {size}", kind.name()))?;
        let rate = |hits: usize| hits as f64 / result.instances.max(1) as f64;
        let [single_low, single_high] = wilson_interval(result.single_solved, result.instances);
        let [low, high] = wilson_interval(result.ensemble_solved, result.instances);
        bar.suspend(|| {
            println!(
                "{},{size},{},{},{},{},{},{:.4},{single_low:.4},{single_high:.4},{},{:.4},{low:.4},{high:.4}",
                kind.name(),
                picked.split,
                result.instances,
                args.seeds,
                args.merge_steps,
                result.single_solved,
                rate(result.single_solved),
                result.ensemble_solved,
                rate(result.ensemble_solved),
            );
        });
    }
    bar.finish_and_clear();
    Ok(())
}
