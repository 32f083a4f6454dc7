//! `stepscope`: a microscope for the denoising trajectory of video diffusion transformers.
//!
//! With a subcommand it runs the engine headless (`record`, `info`); the window arrives with the
//! desktop app.
mod cli;
mod info;
mod record;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        Some(cli::Command::Record(record_args)) => record::run(&record_args),
        Some(cli::Command::Info(info_args)) => info::run(&info_args),
        None => info::run_default(),
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
