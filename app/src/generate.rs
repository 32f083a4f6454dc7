//! `stepscope generate`: task instances to a safetensors file (the PyTorch trainer's data).
use anyhow::{Context, Result};
use stepscope_engine::tasks::{TaskKind, TaskParams};
use stepscope_engine::training::dataset::write_instances;

use crate::cli::GenerateArgs;

pub fn run(args: &GenerateArgs) -> Result<()> {
    let kind = TaskKind::from_name(&args.task).context("--task")?;
    let params = TaskParams { size: args.size.unwrap_or(kind.default_params().size), frames: args.frames };
    let training_only = args.split == "train";
    write_instances(&args.output, kind, params, (args.first_seed, args.count), training_only).with_context(
        || format!("writing {} {} instances to {}", args.count, kind.name(), args.output.display()),
    )
}
