//! `stepscope train`: trains the built-in model's recipe on fresh task instances, with a
//! progress bar, a loss log, periodic atomic checkpoints, held-out evaluations, and resume.
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use indicatif::ProgressBar;
use stepscope_engine::tasks::{TaskKind, held_out_seeds};
use stepscope_engine::training::checkpoint::CHECKPOINT_FILE;
use stepscope_engine::training::config::pixel_wan;
use stepscope_engine::training::params::PROMPT_PREFIX;
use stepscope_engine::training::{
    EvalPlan, SamplerSettings, StepStats, TrainConfig, Trainer, evaluate, inference_model,
};

use crate::cli::TrainArgs;
use crate::progress::progress_bar;

const LOSS_HEADER: &str = "step,samples,task,size,loss,grad_norm,lr,elapsed_s";
const EVAL_HEADER: &str = "step,task,size,count,solved,solve_rate,mean_score";

pub fn run(args: &TrainArgs) -> Result<()> {
    let device = Device::Cpu;
    let mut trainer = if let Some(dir) = &args.resume {
        Trainer::resume(dir, &device).with_context(|| format!("resuming the run in {}", dir.display()))?
    } else {
        if args.out.join(CHECKPOINT_FILE).exists() {
            bail!("{} already holds a run; pass --resume {0} to continue it", args.out.display());
        }
        Trainer::new(recipe(args)?, &device).context("setting up the run")?
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let log_source = args.resume.as_deref().unwrap_or(&args.out);
    let mut loss_log =
        open_log(&log_source.join("loss.csv"), &args.out.join("loss.csv"), LOSS_HEADER, trainer.step_idx())?;
    let mut eval_log =
        open_log(&log_source.join("eval.csv"), &args.out.join("eval.csv"), EVAL_HEADER, trainer.step_idx())?;

    let bar = progress_bar(args.quiet, args.steps, trainer.step_idx(), "steps");
    bar.println(format!(
        "training {} parameters on {} from step {} ({} instances per step) into {}",
        trainer.parameters().scalar_count(),
        trainer.config().tasks.iter().map(|mix| mix.task.as_str()).collect::<Vec<_>>().join(", "),
        trainer.step_idx(),
        trainer.config().batch_size,
        args.out.display()
    ));
    let started = Instant::now();
    let first_step = trainer.step_idx();
    let mut smoothed_loss: Option<f32> = None;
    while trainer.step_idx() < args.steps {
        let stats = trainer.step().context("training step")?;
        let elapsed_s = started.elapsed().as_secs_f64();
        write_loss_row(&mut loss_log, &stats, trainer.samples(), elapsed_s)?;
        let smoothed = smoothed_loss.map_or(stats.loss, |s| 0.98 * s + 0.02 * stats.loss);
        smoothed_loss = Some(smoothed);
        let rate = (trainer.step_idx() - first_step) as f64 * trainer.config().batch_size as f64
            / elapsed_s.max(1e-9);
        bar.set_position(trainer.step_idx());
        bar.set_message(format!("loss {smoothed:.4}, {rate:.1} samples/s"));
        let done = trainer.step_idx();
        if done % args.checkpoint_every.max(1) == 0 || done == args.steps {
            loss_log.flush().context("writing loss.csv")?;
            trainer.save(&args.out).context("writing the checkpoint")?;
        }
        if args.eval_every > 0 && (done % args.eval_every == 0 || done == args.steps) {
            run_eval(&trainer, args.eval_count, &mut eval_log, &bar)?;
        }
    }
    loss_log.flush().context("writing loss.csv")?;
    bar.finish();
    println!("model (EMA weights): {}", args.out.join("model").display());
    Ok(())
}

/// The recipe from the command line's flags.
fn recipe(args: &TrainArgs) -> Result<TrainConfig> {
    let kinds = args
        .tasks
        .iter()
        .map(|name| TaskKind::from_name(name.trim()))
        .collect::<Result<Vec<_>, _>>()
        .context("--tasks")?;
    let mut config = TrainConfig::recipe(&kinds);
    config.model = pixel_wan(args.layers, args.heads, 32, args.ffn_dim, config.model.text_dim);
    config.batch_size = args.batch_size;
    config.learning_rate = args.lr;
    config.seed = args.seed;
    for mix in &mut config.tasks {
        mix.frames = args.frames;
        if mix.task == TaskKind::Maze.name() {
            (mix.min_size, mix.max_size) = args.maze_sizes;
        }
    }
    config.validate().context("the training recipe")?;
    Ok(config)
}

/// Evaluates the EMA weights on held-out seeds `0..count` of every task and size of the mix.
fn run_eval(trainer: &Trainer, count: u64, log: &mut BufWriter<File>, bar: &ProgressBar) -> Result<()> {
    let config = trainer.config();
    let weights = trainer.ema_weights();
    let model = Arc::new(inference_model(&config.model, weights, &Device::Cpu)?);
    let mut summary = Vec::new();
    for mix in &config.tasks {
        let kind = mix.kind()?;
        let prompt = weights
            .get(&format!("{PROMPT_PREFIX}{}", mix.task))
            .with_context(|| format!("no prompt for {}", mix.task))?;
        for size in mix.min_size..=mix.max_size {
            let plan = EvalPlan {
                task: kind,
                params: mix.params(size),
                seeds: held_out_seeds(kind, &mix.params(size), 0, usize::try_from(count)?, &HashSet::new())?
                    .seeds,
                noise_seeds: 1,
                sampler: SamplerSettings::default(),
                per_step: false,
                tolerance: stepscope_engine::tasks::TOLERANCE,
                other_tolerances: Vec::new(),
            };
            let result = evaluate(&model, prompt, &plan, &mut || {})
                .with_context(|| format!("evaluating {} size {size}", mix.task))?;
            writeln!(
                log,
                "{},{},{size},{},{},{:.4},{:.4}",
                trainer.step_idx(),
                mix.task,
                result.count,
                result.solved,
                result.solve_rate(),
                result.mean_score
            )
            .context("writing eval.csv")?;
            summary.push(format!("{} {size}: {:.0}%", mix.task, 100.0 * result.solve_rate()));
        }
    }
    log.flush().context("writing eval.csv")?;
    bar.println(format!("step {}: solved {}", trainer.step_idx(), summary.join(", ")));
    Ok(())
}

fn write_loss_row(log: &mut BufWriter<File>, stats: &StepStats, samples: u64, elapsed_s: f64) -> Result<()> {
    writeln!(
        log,
        "{},{samples},{},{},{:.6},{:.4},{:.3e},{elapsed_s:.1}",
        stats.step_idx,
        stats.task.name(),
        stats.size,
        stats.loss,
        stats.grad_norm,
        stats.learning_rate
    )
    .context("writing loss.csv")
}

/// Opens the CSV log `target` for appending, first keeping from `source` (the run's previous
/// log, possibly the same file) the rows of steps before `resume_step`: rows written after the
/// last checkpoint are replayed by the resumed run.
fn open_log(source: &Path, target: &PathBuf, header: &str, resume_step: u64) -> Result<BufWriter<File>> {
    let mut kept = vec![header.to_owned()];
    if resume_step > 0 && source.is_file() {
        let text = fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
        kept.extend(
            text.lines()
                .skip(1)
                .filter(|line| {
                    line.split(',')
                        .next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|s| s < resume_step)
                })
                .map(str::to_owned),
        );
    }
    let mut contents = kept.join("\n");
    contents.push('\n');
    fs::write(target, contents).with_context(|| format!("writing {}", target.display()))?;
    let file = OpenOptions::new()
        .append(true)
        .open(target)
        .with_context(|| format!("opening {}", target.display()))?;
    Ok(BufWriter::new(file))
}
