//! `stepscope ensemble`: the training-free seed ensemble's solve rate next to a single seed's and
//! to a single seed's at equal compute (as many steps as the ensemble's model passes), on the
//! same held-out instances, with 95% Wilson intervals and exact sign tests on the paired
//! outcomes. One CSV row per size.

use anyhow::{Context, Result};
use stepscope_engine::analysis::{
    EnsemblePlan, EnsembleResult, mcnemar_exact, run_ensemble, wilson_interval,
};
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
        "task,size,split,method,instances,seeds,merge_steps,single_passes,ensemble_passes,\
         single_solved,single_low,single_high,equal_compute_solved,equal_compute_low,equal_compute_high,\
         ensemble_solved,ensemble_low,ensemble_high,p_vs_single,p_vs_equal_compute"
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
            method: args.method.into(),
        };
        let result = run_ensemble(&model, prompt, &plan, &mut || bar.inc(1))
            .with_context(|| format!("the ensemble on {} size {size}", kind.name()))?;
        let row = result_row(&result);
        bar.suspend(|| {
            println!(
                "{},{size},{},{},{},{},{},{row}",
                kind.name(),
                picked.split,
                plan.method.name(),
                result.outcomes.len(),
                args.seeds,
                args.merge_steps,
            );
        });
    }
    bar.finish_and_clear();
    Ok(())
}

/// The passes, each arm's solved count with its Wilson interval, and the paired tests of the
/// ensemble against each single-seed arm.
fn result_row(result: &EnsembleResult) -> String {
    let arm = |solved: usize| {
        let [low, high] = wilson_interval(solved, result.outcomes.len());
        format!("{solved},{low:.4},{high:.4}")
    };
    let single = result.solved(|o| o.single);
    let equal = result.solved(|o| o.equal_compute);
    let ensemble = result.solved(|o| o.ensemble);
    let p = |other: fn(&stepscope_engine::analysis::EnsembleOutcome) -> bool| {
        mcnemar_exact(result.solved(|o| o.ensemble && !other(o)), result.solved(|o| !o.ensemble && other(o)))
    };
    format!(
        "{},{},{},{},{},{:.4},{:.4}",
        result.passes[0],
        result.passes[1],
        arm(single),
        arm(equal),
        arm(ensemble),
        p(|o| o.single),
        p(|o| o.equal_compute)
    )
}
