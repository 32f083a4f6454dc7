//! Checks every task meets: determinism, shapes, exact ground truth, low scores for doing
//! nothing and for noise.
#![expect(clippy::float_cmp, reason = "a perfect video scores exactly 1.0, by design")]
use candle_core::Device;

use super::rng::SplitMix64;
use super::*;

/// A few sizes across each task's range, with its default frame count and a longer one.
fn cases(kind: TaskKind) -> Vec<TaskParams> {
    let range = kind.size_range();
    let mut sizes = vec![*range.start(), kind.default_params().size, 8];
    if kind == TaskKind::Symmetry {
        sizes = vec![4, 6, 8];
    }
    sizes
        .into_iter()
        .flat_map(|size| [TaskParams { size, frames: 5 }, TaskParams { size, frames: 2 }])
        .collect()
}

fn every_instance(mut check: impl FnMut(&TaskInstance)) {
    for kind in TaskKind::ALL {
        for params in cases(kind) {
            for seed in 0..25 {
                check(&kind.generate(seed, &params).unwrap());
            }
        }
    }
}

/// Uniform noise in `[-1, 1]` of the shape of `like`.
pub(crate) fn uniform_noise(like: &TaskVideo, seed: u64) -> TaskVideo {
    let mut rng = SplitMix64::new(seed);
    let values = like.values().iter().map(|_| (2.0 * rng.unit() - 1.0) as f32).collect();
    TaskVideo::from_values(like.shape(), values).unwrap()
}

#[test]
fn names_round_trip_and_faculties_are_vbvrs() {
    for kind in TaskKind::ALL {
        assert_eq!(TaskKind::from_name(kind.name()).unwrap(), kind);
    }
    assert!(matches!(TaskKind::from_name("sudoku"), Err(TaskError::UnknownTask(_))));
    assert_eq!(TaskKind::Maze.faculty(), Faculty::Spatiality);
    let faculties: std::collections::HashSet<Faculty> =
        TaskKind::ALL.iter().map(|kind| kind.faculty()).collect();
    assert_eq!(faculties.len(), TaskKind::ALL.len());
}

#[test]
fn generation_is_deterministic_in_the_seed() {
    for kind in TaskKind::ALL {
        let params = kind.default_params();
        let first = kind.generate(7, &params).unwrap();
        assert_eq!(first, kind.generate(7, &params).unwrap(), "{}", kind.name());
        let distinct: std::collections::HashSet<Vec<u32>> = (0..10)
            .map(|seed| {
                let video = kind.generate(seed, &params).unwrap().ground_truth;
                video.values().iter().map(|value| value.to_bits()).collect()
            })
            .collect();
        assert!(distinct.len() >= 9, "{}: only {} distinct videos in 10 seeds", kind.name(), distinct.len());
    }
}

#[test]
fn videos_have_the_documented_shapes() {
    every_instance(|instance| {
        let TaskParams { size, frames } = instance.params;
        let side = if instance.kind == TaskKind::Maze { 2 * size + 2 } else { 2 * size };
        assert_eq!(instance.ground_truth.shape(), [3, frames, side, side]);
        assert_eq!(instance.first_frame, instance.ground_truth.repeat_frame(0, 1));
        assert_ne!(instance.first_frame, instance.ground_truth.repeat_frame(frames - 1, 1));
        assert_eq!(instance.token_grid(), (side / 2, side / 2));
        let targets = instance.token_targets();
        assert_eq!(targets.len(), side * side / 4);
        assert!(targets.contains(&1.0));
        assert!(!instance.prompt.is_empty());
    });
}

#[test]
fn ground_truth_scores_exactly_one_and_is_solved() {
    every_instance(|instance| {
        let score = instance.score(&instance.ground_truth).unwrap();
        assert_eq!(score.value, 1.0, "{} seed {}: {score:?}", instance.kind.name(), instance.seed);
        assert!(score.solved);
        assert!(score.parts.iter().all(|&(_, value)| value == 1.0));
        // The last frame alone is what counts.
        let last = instance.ground_truth.repeat_frame(instance.params.frames - 1, 1);
        assert!(instance.score(&last).unwrap().solved);
    });
}

#[test]
fn a_slightly_noisy_ground_truth_is_still_solved() {
    every_instance(|instance| {
        let noise = uniform_noise(&instance.ground_truth, instance.seed);
        let values =
            instance.ground_truth.values().iter().zip(noise.values()).map(|(&clean, &eps)| clean + 0.2 * eps);
        let noisy = TaskVideo::from_values(instance.ground_truth.shape(), values.collect()).unwrap();
        let score = instance.score(&noisy).unwrap();
        assert!(
            score.solved && score.value == 1.0,
            "{} seed {}: {score:?}",
            instance.kind.name(),
            instance.seed
        );
    });
}

#[test]
fn the_first_frame_copied_forward_scores_low() {
    every_instance(|instance| {
        let copied = instance.ground_truth.repeat_frame(0, instance.params.frames);
        let score = instance.score(&copied).unwrap();
        assert!(!score.solved);
        assert!(score.value < 0.3, "{} seed {}: {score:?}", instance.kind.name(), instance.seed);
    });
}

#[test]
fn uniform_noise_scores_low() {
    every_instance(|instance| {
        let score = instance.score(&uniform_noise(&instance.ground_truth, instance.seed + 1000)).unwrap();
        assert!(!score.solved);
        assert!(score.value < 0.2, "{} seed {}: {score:?}", instance.kind.name(), instance.seed);
    });
}

#[test]
fn scores_survive_a_trip_through_a_tensor() {
    for kind in TaskKind::ALL {
        let instance = kind.generate(3, &kind.default_params()).unwrap();
        let tensor = instance.ground_truth.to_tensor(&Device::Cpu).unwrap();
        let back = TaskVideo::from_tensor(&tensor).unwrap();
        assert!(instance.score(&back).unwrap().solved);
    }
}

#[test]
fn bad_parameters_and_sizes_are_refused() {
    for kind in TaskKind::ALL {
        let size = *kind.size_range().end() + 2;
        assert!(matches!(kind.generate(0, &TaskParams { size, frames: 5 }), Err(TaskError::Params(_))));
        let default = kind.default_params();
        assert!(matches!(kind.generate(0, &TaskParams { frames: 1, ..default }), Err(TaskError::Params(_))));
        let instance = kind.generate(0, &default).unwrap();
        let other = TaskVideo::filled(2, 10, 8, Color::White);
        assert!(matches!(instance.score(&other), Err(TaskError::SizeMismatch { .. })));
    }
    assert!(TaskKind::Symmetry.generate(0, &TaskParams { size: 7, frames: 5 }).is_err());
}
