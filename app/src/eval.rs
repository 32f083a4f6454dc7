//! `stepscope eval`: solve rates of a trained model on held-out task instances, sampled with
//! the engine's sampler and scored by the tasks' rule-based scorers. Prints one CSV row per size;
//! with `--per-step`, also writes the score of `x0_hat` at every step and the distribution of
//! commit steps.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use stepscope_engine::analysis::wilson_interval;
use stepscope_engine::tasks::TaskParams;
use stepscope_engine::training::{EvalPlan, EvalResult, SamplerSettings, StepCurve, evaluate};
use stepscope_engine::trajectory::replace_file_with;

use crate::cli::EvalArgs;
use crate::instances::pick_instances;
use crate::progress::progress_bar;
use crate::task_model::{TaskModel, load_task_model, sizes_or_default};

pub fn run(args: &EvalArgs) -> Result<()> {
    let TaskModel { model, prompt, kind, dir } = load_task_model(args.model.clone(), &args.task)?;
    let prompt = &prompt;
    let sampler = SamplerSettings { steps: args.steps, shift: args.shift, scheduler: args.scheduler };
    let mut plans = Vec::new();
    let mut split = "";
    for size in sizes_or_default(kind, &args.size) {
        let params = TaskParams { size, frames: args.frames };
        let instances = pick_instances(&dir, kind, &params, (args.split, args.seed_offset, args.instances))?;
        eprintln!("{}", instances.summary);
        split = instances.split;
        plans.push(EvalPlan {
            task: kind,
            params,
            seeds: instances.seeds,
            noise_seeds: args.seeds,
            sampler,
            per_step: args.per_step.is_some() || args.per_instance.is_some(),
            tolerance: args.tolerance,
            other_tolerances: args.also_tolerance.clone(),
        });
    }
    let mut per_step_csv = String::from(PER_STEP_HEADER);
    let mut per_instance_csv = String::from("task,size,instance,noise_seed_idx,commit_step");
    for tolerance in &args.also_tolerance {
        let _ = write!(per_instance_csv, ",commit_step_at_{tolerance}");
    }
    per_instance_csv.push('\n');
    let total = plans.iter().map(EvalPlan::samples).sum();
    let bar = progress_bar(args.quiet, total, 0, "samples");
    println!(
        "task,size,frames,split,instances,first_seed,last_seed,noise_seeds,samples,solved,solve_rate,solve_low,solve_high,any_seed_rate,mean_score"
    );
    for plan in &plans {
        let size = plan.params.size;
        bar.set_message(format!("{} {size}", kind.name()));
        let result = evaluate(&model, prompt, plan, &mut || bar.inc(1))
            .with_context(|| format!("evaluating {} size {size}", kind.name()))?;
        let [low, high] = wilson_interval(result.solved, result.samples);
        let (first, last) =
            (plan.seeds.first().copied().unwrap_or(0), plan.seeds.last().copied().unwrap_or(0));
        bar.suspend(|| {
            println!(
                "{},{size},{},{split},{},{first},{last},{},{},{},{:.4},{low:.4},{high:.4},{:.4},{:.4}",
                kind.name(),
                args.frames,
                result.count,
                args.seeds,
                result.samples,
                result.solved,
                result.solve_rate(),
                result.any_seed_rate(),
                result.mean_score
            );
            eprintln!("{}", checks_summary(&result, args.tolerance));
            if let Some(curve) = &result.steps {
                eprintln!("{} (tolerance {})", commit_summary(&result, curve), args.tolerance);
            }
            for other in &result.other_tolerances {
                eprintln!(
                    "{} {size} at tolerance {}: {} of {} samples solved",
                    kind.name(),
                    other.tolerance,
                    other.solved,
                    result.samples
                );
                if let Some(curve) = &other.steps {
                    eprintln!("{} (tolerance {})", commit_summary(&result, curve), other.tolerance);
                }
            }
        });
        if let Some(curve) = &result.steps {
            per_step_rows(&mut per_step_csv, &result, (args.tolerance, curve));
            for other in &result.other_tolerances {
                if let Some(other_curve) = &other.steps {
                    per_step_rows(&mut per_step_csv, &result, (other.tolerance, other_curve));
                }
            }
            per_instance_rows(&mut per_instance_csv, (&result, curve), (&plan.seeds, args.seeds));
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

const PER_STEP_HEADER: &str = "task,size,tolerance,step,samples,mean_x0_score,x0_solved,x0_solved_rate,committed_here,committed_by,committed_by_rate\n";

/// One row per step: how `x0_hat` scores there at colour `tolerance`, and how many samples have
/// committed by then.
fn per_step_rows(csv: &mut String, result: &EvalResult, (tolerance, curve): (f32, &StepCurve)) {
    let samples = curve.samples().max(1);
    let mut committed_by = 0;
    for (step_idx, (&score_sum, &solved)) in curve.score_sum.iter().zip(&curve.solved).enumerate() {
        let here = curve.committed_at(step_idx);
        committed_by += here;
        let _ = writeln!(
            csv,
            "{},{},{tolerance},{step_idx},{},{:.4},{solved},{:.4},{here},{committed_by},{:.4}",
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
/// instance, `noise_seeds` each, in the order of `seeds`).
fn per_instance_rows(
    csv: &mut String,
    (result, curve): (&EvalResult, &StepCurve),
    (seeds, noise_seeds): (&[u64], u64),
) {
    let noise_seeds = noise_seeds.max(1);
    let step_text = |step: Option<usize>| step.map_or_else(String::new, |step| step.to_string());
    for (sample_idx, commit_step) in (0_u64..).zip(&curve.commit_steps) {
        let instance = seeds[(sample_idx / noise_seeds) as usize];
        let _ = write!(
            csv,
            "{},{},{instance},{},{}",
            result.task.name(),
            result.params.size,
            sample_idx % noise_seeds,
            step_text(*commit_step)
        );
        for other in &result.other_tolerances {
            let at = other
                .steps
                .as_ref()
                .and_then(|steps| steps.commit_steps.get(sample_idx as usize).copied().flatten());
            let _ = write!(csv, ",{}", step_text(at));
        }
        csv.push('\n');
    }
}

/// "maze 5: of 100 final videos, 3 fail `route_drawn`, 1 fails `frames_unfold` (tolerance 0.5)".
fn checks_summary(result: &EvalResult, tolerance: f32) -> String {
    let failures: Vec<String> = result
        .failed_checks
        .iter()
        .filter(|&&(_, failed)| failed > 0)
        .map(|&(name, failed)| format!("{failed} fail {name}"))
        .collect();
    let failures = if failures.is_empty() { "none fails a check".to_owned() } else { failures.join(", ") };
    format!(
        "{} {}: of {} final videos, {failures} (tolerance {tolerance})",
        result.task.name(),
        result.params.size,
        result.samples
    )
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
