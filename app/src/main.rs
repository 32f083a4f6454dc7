//! `stepscope`: a microscope for the denoising trajectory of video diffusion transformers.
//!
//! With no subcommand it opens the window, on `FILE` or on the built-in sample trajectory; with a
//! subcommand it runs the engine headless (`record`, `info`, `train`, `eval`), or opens the
//! window on a live run (`live`).
mod cli;
mod eval;
mod info;
mod record;
mod train;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        Some(cli::Command::Record(record_args)) => record::run(&record_args),
        Some(cli::Command::Info(info_args)) => info::run(&info_args),
        Some(cli::Command::Live(live_args)) => {
            let setup = stepscope::viewer::live::LiveSetup {
                model_dir: live_args.model,
                prompt_embeds: live_args.prompt_embeds,
                rng_seed: live_args.seed,
                size: live_args.size,
                steps: live_args.steps,
                shift: live_args.shift,
                scheduler: live_args.scheduler,
                capture: live_args.capture,
            };
            stepscope::viewer::run_window(stepscope::viewer::Startup::Live(Box::new(setup)))
        }
        Some(cli::Command::Train(train_args)) => train::run(&train_args),
        Some(cli::Command::Eval(eval_args)) => eval::run(&eval_args),
        None => {
            let path = args.file.unwrap_or_else(stepscope::sample_trajectory_path);
            stepscope::viewer::run_native(&path)
        }
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
