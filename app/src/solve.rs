//! `stepscope solve`: record a model solving a task instance, as the live window runs it, for
//! one or more noise seeds, without a window: every step of every seed, then the file.

use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use stepscope_engine::session::{NoiseSource, SamplingSession};
use stepscope_engine::trajectory::{self, StorageDtype};

use crate::cli::SolveArgs;
use crate::progress::progress_bar;

pub fn run(args: SolveArgs) -> Result<()> {
    ensure!(args.seeds >= 1, "--seeds must be at least 1");
    let first_seed = args.run.seed;
    let setup = crate::live_setup(args.run);
    let request = setup.to_request()?;
    let mut recorder = request.recorder(StorageDtype::F32)?;
    let steps = request.settings.steps;
    let progress = progress_bar(args.quiet, args.seeds * steps as u64, 0, "steps");
    for offset in 0..args.seeds {
        let rng_seed = first_seed.checked_add(offset).context("--seed + --seeds overflows")?;
        let mut session = SamplingSession::new(
            Arc::clone(&request.model),
            Arc::clone(&request.conditioning),
            request.settings.clone(),
            request.latent_shape,
            &NoiseSource::Seed(rng_seed),
        )?;
        // The request registered seed 0; the others are added here.
        let seed_idx =
            if offset == 0 { 0 } else { recorder.add_seed(trajectory::NoiseSource::RngSeed(rng_seed), None) };
        progress.set_message(format!("seed {seed_idx}"));
        recorder
            .record_run(seed_idx, &mut session, &mut || progress.inc(1))
            .with_context(|| format!("seed {seed_idx}, step {}", session.step_idx()))?;
    }
    progress.finish_and_clear();
    recorder.write(&args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
