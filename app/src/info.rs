//! `stepscope info FILE`: a trajectory file's manifest, in words or as JSON.
use anyhow::{Context, Result};
use stepscope_engine::trajectory::TrajectoryReader;

use crate::cli::InfoArgs;

pub fn run(args: &InfoArgs) -> Result<()> {
    let reader = TrajectoryReader::open(&args.file)?;
    if args.json {
        let json = serde_json::to_string_pretty(reader.manifest()).context("encoding the manifest")?;
        println!("{json}");
    } else {
        println!("{}", reader.describe());
    }
    Ok(())
}

/// With no subcommand: until the window exists, describe the built-in sample trajectory.
pub fn run_default() -> Result<()> {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample.safetensors");
    let sample = std::fs::canonicalize(&sample).unwrap_or(sample);
    println!(
        "stepscope {}: the desktop window is not built yet; the built-in sample trajectory:\n",
        env!("CARGO_PKG_VERSION")
    );
    run(&InfoArgs { file: sample, json: false })?;
    println!("\nRecord your own: stepscope record --help");
    Ok(())
}
