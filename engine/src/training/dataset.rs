//! Task instances written to a safetensors file, for trainers outside this crate (the PyTorch
//! trainer in `training/train_torch.py` reads them) and for anyone who wants the data itself.
//!
//! The file holds `videos` `[N, 3, F, H, W]` f32 in `[-1, 1]` (the ground-truth videos of
//! instances `first_seed .. first_seed + N`, frame 0 the puzzle) and, in its header metadata,
//! `task`, `size`, `frames`, `first_seed` and `count`, all as decimal strings, and `split`:
//! `train` where each seed drew a training puzzle ([`TaskKind::generate_for_training`], what the
//! trainers read), `none` where each seed drew its own puzzle.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::checkpoint::write_safetensors;
use super::error::{Result, TrainingError};
use crate::tasks::{TaskKind, TaskParams};

/// The most instances one file may hold (1 GiB of 5x5-maze videos of 5 frames is ~120 k).
pub const MAX_INSTANCES: u64 = 1 << 20;

/// Writes the ground truth of instances `first_seed ..` (`count` of them, seeds wrapping) of
/// `kind` at `params` to `path`, atomically; with `training_only`, each seed draws a training
/// puzzle.
pub fn write_instances(
    path: &Path,
    kind: TaskKind,
    params: TaskParams,
    (first_seed, count): (u64, u64),
    training_only: bool,
) -> Result<()> {
    if count == 0 || count > MAX_INSTANCES {
        return Err(TrainingError::Setup(format!("--count {count}: give 1 to {MAX_INSTANCES} instances")));
    }
    let mut videos = Vec::new();
    for offset in 0..count {
        let seed = first_seed.wrapping_add(offset);
        let instance = if training_only {
            kind.generate_for_training(seed, &params)?
        } else {
            kind.generate(seed, &params)?
        };
        videos.push(instance.ground_truth.to_tensor(&Device::Cpu)?);
    }
    let videos = Tensor::stack(&videos, 0)?;
    let metadata = HashMap::from([
        ("task".to_owned(), kind.name().to_owned()),
        ("size".to_owned(), params.size.to_string()),
        ("frames".to_owned(), params.frames.to_string()),
        ("first_seed".to_owned(), first_seed.to_string()),
        ("count".to_owned(), count.to_string()),
        ("split".to_owned(), if training_only { "train" } else { "none" }.to_owned()),
    ]);
    write_safetensors(path, vec![("videos".to_owned(), &videos)], Some(metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_instances_are_the_generators_ground_truth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mazes.safetensors");
        let params = TaskParams { size: 4, frames: 3 };
        write_instances(&path, TaskKind::Maze, params, (u64::MAX, 2), false).unwrap();
        let videos = candle_core::safetensors::load(&path, &Device::Cpu).unwrap().remove("videos").unwrap();
        assert_eq!(videos.dims(), &[2, 3, 3, 10, 10]);
        // Seeds wrap: u64::MAX, then 0.
        for (index, seed) in [(0, u64::MAX), (1, 0)] {
            let expected =
                TaskKind::Maze.generate(seed, &params).unwrap().ground_truth.to_tensor(&Device::Cpu).unwrap();
            let written = videos.get(index).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let expected = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(written.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "seed {seed}");
        }
        assert!(write_instances(&path, TaskKind::Maze, params, (0, 0), false).is_err());
        assert!(
            write_instances(&path, TaskKind::Maze, TaskParams { size: 99, frames: 3 }, (0, 1), false)
                .is_err()
        );
        // The trainers' data: training puzzles only.
        write_instances(&path, TaskKind::Maze, TaskParams { size: 4, frames: 3 }, (1 << 63, 64), true)
            .unwrap();
        let videos = candle_core::safetensors::load(&path, &Device::Cpu).unwrap().remove("videos").unwrap();
        for index in 0..64 {
            let frame = videos.get(index).unwrap().narrow(1, 0, 1).unwrap();
            let video = crate::tasks::TaskVideo::from_tensor(&frame).unwrap();
            let instance = TaskKind::Maze
                .generate_for_training((1 << 63) + index as u64, &TaskParams { size: 4, frames: 3 })
                .unwrap();
            assert_eq!(video, instance.first_frame);
            assert_eq!(instance.split(), crate::tasks::Split::Train);
        }
    }
}
