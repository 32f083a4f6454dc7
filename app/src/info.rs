//! `stepscope info FILE`: a trajectory file's manifest, in words or as JSON; with `--verify`,
//! every tensor checked against the file's checksums, with its non-finite values counted.
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use stepscope_engine::trajectory::{NonFinite, TensorCheck, TrajectoryReader};

use crate::cli::InfoArgs;
use crate::progress::progress_bar;

pub fn run(args: &InfoArgs) -> Result<()> {
    let reader = TrajectoryReader::open(&args.file)?;
    if args.json {
        let json = serde_json::to_string_pretty(reader.manifest()).context("encoding the manifest")?;
        println!("{json}");
    } else {
        println!("{}", reader.describe());
    }
    if args.verify {
        verify(&reader)?;
    }
    Ok(())
}

/// Checks every tensor of `reader`, prints what it found (to stderr with `--json`, so stdout
/// stays JSON), and fails if a tensor is corrupt.
fn verify(reader: &TrajectoryReader) -> Result<()> {
    let total = reader.file_len() as u64;
    let bar = progress_bar(!std::io::stderr().is_terminal(), total, 0, "bytes");
    bar.set_message("verify");
    let start = Instant::now();
    let checks = reader.verify(|done| bar.set_position(done as u64));
    bar.finish_and_clear();
    let report = report(reader, &checks, start.elapsed().as_secs_f64());
    eprintln!("{report}");
    let corrupt: Vec<&TensorCheck> = checks.iter().filter(|check| check.corrupt.is_some()).collect();
    if let Some(first) = corrupt.first() {
        let names: Vec<String> = corrupt.iter().map(|check| format!("`{}`", check.name)).collect();
        bail!(
            "{} of {} tensors are corrupt ({}); the first: {}",
            corrupt.len(),
            checks.len(),
            names.join(", "),
            first.corrupt.as_ref().map(ToString::to_string).unwrap_or_default()
        );
    }
    Ok(())
}

/// The summary of a verification: what was checked, how long it took, and every tensor with
/// non-finite values.
fn report(reader: &TrajectoryReader, checks: &[TensorCheck], seconds: f64) -> String {
    let bytes: usize = checks.iter().map(|check| check.bytes).sum();
    let corrupt = checks.iter().filter(|check| check.corrupt.is_some()).count();
    let what = if reader.is_checksummed() {
        format!("{} of {} tensors match their checksums", checks.len() - corrupt, checks.len())
    } else {
        format!(
            "{} tensors read; their data is unverified (format version {} files carry no checksums)",
            checks.len(),
            reader.manifest().format_version
        )
    };
    let manifest = if reader.is_checksummed() { "; the manifest matches its checksum" } else { "" };
    let mut lines =
        vec![format!("Verified {:.2} GB in {seconds:.1} s: {what}{manifest}.", bytes as f64 / 1e9)];
    let non_finite: Vec<&TensorCheck> = checks.iter().filter(|check| check.non_finite.any()).collect();
    if non_finite.is_empty() {
        lines.push("Non-finite values: none.".to_owned());
    } else {
        let total = non_finite.iter().fold(NonFinite::default(), |sum, check| NonFinite {
            nan: sum.nan + check.non_finite.nan,
            pos_inf: sum.pos_inf + check.non_finite.pos_inf,
            neg_inf: sum.neg_inf + check.non_finite.neg_inf,
        });
        lines.push(format!("Non-finite values in {} tensors ({total} in all):", non_finite.len()));
        lines.extend(non_finite.iter().map(|check| format!("  {}: {}", check.name, check.non_finite)));
    }
    lines.join("\n")
}
