//! What the window benchmarks share about their data: a file under `target/bench-data/` written
//! once, and this process's resident memory (each benchmark includes this file with `#[path]`
//! and uses part of it).
#![allow(dead_code, reason = "each benchmark that includes this module uses part of it")]

use std::path::{Path, PathBuf};
use std::time::Instant;

/// `target/bench-data/NAME`, written by `write` if it is not there yet (and said so).
pub fn bench_file(name: &str, write: impl FnOnce(&Path)) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
    let path = dir.join(name);
    if !path.exists() {
        let start = Instant::now();
        write(&path);
        println!("wrote {} in {:.1} s", path.display(), start.elapsed().as_secs_f64());
    }
    path
}

/// Resident memory of this process, in MB (Linux; zeros elsewhere): all of it, and the part
/// that is pages of mapped files (the trajectory's memory map, which the kernel may drop).
pub fn resident_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("RssFile:"))
}
