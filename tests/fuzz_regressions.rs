//! Replays the inputs the fuzzers found crashes with (`fuzz/regressions/<target>/`, committed
//! once fixed) and the targets' seed inputs through the same functions the fuzz targets run
//! (`stepscope_tests::fuzz_targets`), so a found crash stays fixed without nightly or
//! cargo-fuzz. Each input must return without panicking.

use std::path::{Path, PathBuf};

use stepscope_tests::fuzz_targets;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("trajectory_reader", fuzz_targets::trajectory_reader),
    ("manifest", fuzz_targets::manifest),
    ("model_config", fuzz_targets::model_config),
    ("tensor_file", fuzz_targets::tensor_file),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files in `dir` (none if it does not exist), sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|entry| Some(entry.ok()?.path())).filter(|path| path.is_file()).collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_committed_regression_input_returns_without_panicking() {
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for input in files_in(&repo().join("fuzz/regressions").join(target)) {
            let bytes = std::fs::read(&input).expect("read a regression input");
            run(&bytes);
            replayed += 1;
        }
    }
    println!("replayed {replayed} regression inputs");
}

#[test]
fn the_targets_accept_their_seed_inputs() {
    // A valid input of each kind runs the deep path of its target (a reader that opens, a
    // config that validates), so a target that rejects everything would show here.
    let golden = std::fs::read(repo().join("tests/golden/trajectory_v2.safetensors")).expect("golden file");
    stepscope_engine::trajectory::TrajectoryReader::from_bytes("golden", golden.clone())
        .expect("opens from memory");
    fuzz_targets::trajectory_reader(&golden);
    let config = std::fs::read(repo().join("tests/fixtures/parity/t2v_hd20/config.json")).expect("config");
    let text = std::str::from_utf8(&config).expect("UTF-8");
    stepscope_engine::model::WanConfig::from_json(text, Path::new("config.json")).expect("a valid config");
    fuzz_targets::model_config(&config);
    let noise = std::fs::read(repo().join("tests/fixtures/noise/seed7_c2f3h4w5.safetensors")).expect("noise");
    fuzz_targets::tensor_file(&noise);
    fuzz_targets::manifest(b"{\"format_version\": 2}");
}
