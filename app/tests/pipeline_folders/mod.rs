//! The tiny pipeline folders the tests assemble from the committed fixtures (one copy of each
//! part in the repository), and the reference runs diffusers made of them.
#![allow(dead_code, reason = "each test binary that includes this module uses part of it")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

#[must_use]
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// Copies the files of `from` (and its sub-folders) into `to`.
pub fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The tiny Wan2.2 TI2V image-to-video folder (`tests/reference/wan_ti2v_fixture.py`) made in
/// `dir/ti2v`: the tiny pipeline's text encoder, tokenizer and scheduler, the tiny Wan2.2 VAE,
/// and its own index, transformer, image and reference run.
pub fn ti2v_folder(dir: &Path) -> PathBuf {
    let pipeline = dir.join("ti2v");
    for part in ["text_encoder", "tokenizer", "scheduler"] {
        copy_folder(&repo_path("tests/fixtures/wan_pipeline_tiny").join(part), &pipeline.join(part));
    }
    copy_folder(&repo_path("tests/fixtures/wan22_vae_tiny"), &pipeline.join("vae"));
    copy_folder(&repo_path("tests/fixtures/wan_pipeline_tiny_ti2v"), &pipeline);
    pipeline
}

/// A reference run's prompt (its file's metadata) and tensors.
pub fn reference_run(path: &Path) -> (String, HashMap<String, Tensor>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let prompt = header.metadata().as_ref().unwrap()["prompt"].clone();
    (prompt, candle_core::safetensors::load(path, &Device::Cpu).unwrap())
}
