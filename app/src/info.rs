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
