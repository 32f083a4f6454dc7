//! `stepscope`: a microscope for the denoising trajectory of video diffusion transformers.
//!
//! With no subcommand it opens the window, on `FILE` or on a live maze session of the built-in
//! model (the built-in sample trajectory where the model is missing); with a
//! subcommand it runs the engine headless (`record`, `info`, `train`, `eval`, `generate`, `probe`,
//! `ensemble`), or opens the
//! window on a live run (`live`).
mod cli;
mod ensemble;
mod eval;
mod export;
mod generate;
mod info;
mod instances;
mod memory;
mod probe;
mod progress;
mod record;
mod solve;
mod task_model;
mod train;

use std::process::ExitCode;

use clap::Parser;

/// `stepscope FILE...` opens the files (a folder as a sweep); plain `stepscope` opens a live maze
/// session on the built-in model, or the built-in sample trajectory where the model is missing.
fn startup(files: Vec<std::path::PathBuf>) -> stepscope::viewer::Startup {
    use stepscope::viewer::{Startup, live};
    if !files.is_empty() {
        return Startup::Files(files);
    }
    if live::builtin_model_dir().join("config.json").is_file() {
        Startup::Live(Box::new(live::LiveSetup::builtin_maze()))
    } else {
        Startup::Files(vec![stepscope::sample_trajectory_path()])
    }
}

/// The live run `stepscope live` asks for: a task instance (a maze by default) or, with
/// `--prompt-embeds`, a free run.
pub(crate) fn live_setup(args: cli::LiveArgs) -> stepscope::viewer::live::LiveSetup {
    use stepscope::viewer::live::{LiveSetup, LiveTask, builtin_model_dir};
    let free_run = args.prompt_embeds.is_some() || args.pipeline.is_some();
    let task = match (free_run, args.task) {
        (true, _) => None,
        (false, name) => Some(LiveTask {
            name: name.unwrap_or_else(|| "maze".to_owned()),
            size: args.cells,
            seed: args.instance,
        }),
    };
    LiveSetup {
        model_dir: args.pipeline.or(args.model).unwrap_or_else(builtin_model_dir),
        prompt_embeds: args.prompt_embeds.unwrap_or_default(),
        prompt: args.prompt.unwrap_or_default(),
        negative_prompt: args.negative_prompt,
        guidance: args.guidance,
        image: args.image.unwrap_or_default(),
        rng_seed: args.seed,
        size: args.size.unwrap_or([args.frames, 0, 0]),
        steps: args.steps,
        shift: args.shift,
        scheduler: args.scheduler,
        capture: args.capture,
        device: args.device,
        task,
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        Some(cli::Command::Record(record_args)) => record::run(&record_args),
        Some(cli::Command::Info(info_args)) => info::run(&info_args),
        Some(cli::Command::Live(live_args)) => {
            stepscope::viewer::run_window(stepscope::viewer::Startup::Live(Box::new(live_setup(live_args))))
        }
        Some(cli::Command::Train(train_args)) => train::run(&train_args),
        Some(cli::Command::Eval(eval_args)) => eval::run(&eval_args),
        Some(cli::Command::Generate(generate_args)) => generate::run(&generate_args),
        Some(cli::Command::Probe(probe_args)) => probe::run(&probe_args),
        Some(cli::Command::Ensemble(ensemble_args)) => ensemble::run(&ensemble_args),
        Some(cli::Command::Export(export_args)) => export::run(&export_args),
        Some(cli::Command::Solve(solve_args)) => solve::run(solve_args),
        Some(cli::Command::Memory(memory_args)) => memory::run(&memory_args),
        None => stepscope::viewer::run_window(startup(args.files)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One message: the outermost context first, then each cause.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
