//! `stepscope eval`: solve rates of a trained model on held-out task instances, sampled with
//! the engine's sampler and scored by the tasks' rule-based scorers. Prints one CSV row per size;
//! with `--per-step`, also writes the score of `x0_hat` at every step and the distribution of
//! commit steps.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use stepscope_engine::tasks::TaskParams;
use stepscope_engine::training::{EvalPlan, EvalResult, SamplerSettings, StepCurve, evaluate};
use stepscope_engine::trajectory::replace_file_with;

use crate::cli::EvalArgs;
use crate::progress::progress_bar;
use crate::task_model::{TaskModel, load_task_model, sizes_or_default};

pub fn run(args: &EvalArgs) -> Result<()> {
    let TaskModel { model, prompt, kind, .. } = load_task_model(args.model.clone(), &args.task)?;
    let prompt = &prompt;
    let sampler = SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler };
    let seeds = args.seed_offset..args.seed_offset.saturating_add(args.instances);
    let plans: Vec<EvalPlan> = sizes_or_default(kind, &args.size)
        .into_iter()
        .map(|size| EvalPlan {
            task: kind,
            params: TaskParams { size, frames: args.frames },
            seeds: seeds.clone(),
            noise_seeds: args.seeds,
            sampler,
            per_step: args.per_step.is_some() || args.per_instance.is_some(),
        })
        .collect();
    let mut per_step_csv = String::from(PER_STEP_HEADER);
    let mut per_instance_csv = String::from("task,size,instance,noise_seed_idx,commit_step\n");
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
            if let Some(curve) = &result.steps {
                eprintln!("{}", commit_summary(&result, curve));
            }
        });
        if let Some(curve) = &result.steps {
            per_step_rows(&mut per_step_csv, &result, curve);
            per_instance_rows(&mut per_instance_csv, (&result, curve), (args.seed_offset, args.seeds));
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.per_step {
        replace_file_with(path, per_step_csv.as_bytes())?;
    }
    if let Some(path) = &args.per_instance {
        replace_file_with(path, per_instance_csv.as_bytes())?;
    }
    Ok(())
}

const PER_STEP_HEADER: &str = "task,size,step,samples,mean_x0_score,x0_solved,x0_solved_rate,committed_here,committed_by,committed_by_rate\n";

/// One row per step: how `x0_hat` scores there, and how many samples have committed by then.
fn per_step_rows(csv: &mut String, result: &EvalResult, curve: &StepCurve) {
    let samples = curve.samples().max(1);
    let mut committed_by = 0;
    for (step_idx, (&score_sum, &solved)) in curve.score_sum.iter().zip(&curve.solved).enumerate() {
        let here = curve.committed_at(step_idx);
        committed_by += here;
        let _ = writeln!(
            csv,
            "{},{},{step_idx},{},{:.4},{solved},{:.4},{here},{committed_by},{:.4}",
            result.task.name(),
            result.params.size,
            curve.samples(),
            score_sum / samples as f64,
            solved as f64 / samples as f64,
            committed_by as f64 / samples as f64,
        );
    }
}

/// One row per sample: its instance, noise seed index and commit step (samples run instance by
/// instance, `noise_seeds` each, from instance `seed_offset`).
fn per_instance_rows(
    csv: &mut String,
    (result, curve): (&EvalResult, &StepCurve),
    (seed_offset, noise_seeds): (u64, u64),
) {
    let noise_seeds = noise_seeds.max(1);
    for (sample_idx, commit_step) in (0_u64..).zip(&curve.commit_steps) {
        let instance = seed_offset + sample_idx / noise_seeds;
        let commit = commit_step.map_or_else(String::new, |step| step.to_string());
        let _ = writeln!(
            csv,
            "{},{},{instance},{},{commit}",
            result.task.name(),
            result.params.size,
            sample_idx % noise_seeds
        );
    }
}

/// "maze 5: 18 of 100 samples commit; median commit step 12 (of 20)".
fn commit_summary(result: &EvalResult, curve: &StepCurve) -> String {
    let committed = curve.commit_steps.iter().flatten().count();
    let median = curve
        .median_commit_step()
        .map_or_else(|| "no commit step".to_owned(), |step| format!("median commit step {step}"));
    format!(
        "{} {}: {committed} of {} samples commit to a solution; {median} (of {} steps)",
        result.task.name(),
        result.params.size,
        curve.samples(),
        curve.score_sum.len()
    )
}
