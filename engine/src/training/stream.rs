//! What a model was trained on: `training_stream.json` in its folder, so that evaluation can
//! prove its instances are held out.
//!
//! ```json
//! {"streams": [{"task": "maze", "size": 4, "frames": 5, "first_seed": 9223372036854775808,
//!               "count": 829440, "split": "none"}]}
//! ```
//!
//! Each stream is the seeds `first_seed .. first_seed + count` (wrapping) of one task and size: a
//! superset of what was read where a trainer skipped part of a chunk. Its `split` says how those
//! seeds drew: `"train"`, training puzzles only ([`TaskKind::generate_for_training`]), so no
//! held-out puzzle was seen; `"none"`, every seed's own puzzle (what trainers did before the split
//! existed), so the held-out puzzles among them were seen and evaluation passes over them. A
//! trainer that draws training puzzles from random seeds (`stepscope train`) writes no streams.
use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, TrainingError};
use crate::model::config::{MAX_CONFIG_BYTES, read_capped};
use crate::tasks::{PuzzleKey, Split, TaskKind, TaskParams};

/// The file's name in a model folder.
pub const TRAINING_STREAM_FILE: &str = "training_stream.json";

/// The most seeds one stream may name: replaying it generates every one of them.
pub const MAX_STREAM_SEEDS: u64 = 1 << 26;

/// How a trainer drew its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamSplit {
    /// Training puzzles only: the held-out split was never drawn.
    Train,
    /// Every seed's own puzzle, held out or not.
    None,
}

/// One task and size's run of consecutive seeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRange {
    pub task: String,
    pub size: usize,
    pub frames: usize,
    pub first_seed: u64,
    pub count: u64,
    pub split: StreamSplit,
}

/// `training_stream.json` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingStream {
    pub streams: Vec<StreamRange>,
    /// Where the ranges come from, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl TrainingStream {
    /// Reads `dir/training_stream.json`; `None` where the folder has none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(TRAINING_STREAM_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = read_capped(&path, MAX_CONFIG_BYTES).map_err(|cause| TrainingError::Io {
            path: path.clone(),
            action: "read the training stream",
            cause,
        })?;
        let stream: Self = serde_json::from_str(&text).map_err(|error| TrainingError::Checkpoint {
            path: path.clone(),
            what: format!("not a training stream record: {error}"),
        })?;
        for range in &stream.streams {
            TaskKind::from_name(&range.task)?;
            if range.count > MAX_STREAM_SEEDS {
                return Err(TrainingError::Checkpoint {
                    path,
                    what: format!(
                        "{} size {} names {} seeds; at most {MAX_STREAM_SEEDS} can be replayed",
                        range.task, range.size, range.count
                    ),
                });
            }
        }
        Ok(Some(stream))
    }

    /// The held-out puzzles of `kind` at `size` that this stream drew, found by generating every
    /// seed of its unsplit streams of that task and size (streams of training puzzles draw none).
    pub fn held_out_puzzles_drawn(&self, kind: TaskKind, size: usize) -> Result<HashSet<PuzzleKey>> {
        let mut drawn = HashSet::new();
        let unsplit = |range: &&StreamRange| {
            range.task == kind.name() && range.size == size && range.split == StreamSplit::None
        };
        for range in self.streams.iter().filter(unsplit) {
            let params = TaskParams { size, frames: range.frames };
            for offset in 0..range.count.min(MAX_STREAM_SEEDS) {
                let key = kind.generate(range.first_seed.wrapping_add(offset), &params)?.puzzle_key();
                if key.split() == Split::HeldOut {
                    drawn.insert(key);
                }
            }
        }
        Ok(drawn)
    }

    /// Seeds named for `kind` at `size`.
    #[must_use]
    pub fn seeds_of(&self, kind: TaskKind, size: usize) -> u64 {
        self.streams
            .iter()
            .filter(|range| range.task == kind.name() && range.size == size)
            .map(|range| range.count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::held_out_seeds;

    fn stream(split: StreamSplit, count: u64) -> TrainingStream {
        TrainingStream {
            streams: vec![StreamRange {
                task: "maze".into(),
                size: 4,
                frames: 5,
                first_seed: 1 << 63,
                count,
                split,
            }],
            note: String::new(),
        }
    }

    #[test]
    fn a_replayed_stream_names_exactly_the_held_out_puzzles_it_drew() {
        let old = stream(StreamSplit::None, 20_000);
        let drawn = old.held_out_puzzles_drawn(TaskKind::Maze, 4).unwrap();
        let params = TaskParams { size: 4, frames: 5 };
        let by_hand: HashSet<PuzzleKey> = (0..20_000)
            .map(|offset| TaskKind::Maze.generate((1 << 63) + offset, &params).unwrap().puzzle_key())
            .filter(|key| key.split() == Split::HeldOut)
            .collect();
        assert_eq!(drawn, by_hand);
        assert!(drawn.len() > 100);
        // Held-out seeds picked from where the stream drew, with the exclusion, meet none of its
        // puzzles (every held-out one it drew is skipped); without the exclusion they do.
        let picked = held_out_seeds(TaskKind::Maze, &params, 1 << 63, 50, &drawn).unwrap();
        assert!(usize::try_from(picked.excluded).unwrap() >= drawn.len());
        let plain = held_out_seeds(TaskKind::Maze, &params, 1 << 63, 50, &HashSet::new()).unwrap();
        let key = |seed: &u64| TaskKind::Maze.generate(*seed, &params).unwrap().puzzle_key();
        assert!(picked.seeds.iter().all(|seed| !drawn.contains(&key(seed))));
        assert!(plain.seeds.iter().any(|seed| drawn.contains(&key(seed))));
        // Other tasks and sizes are not in this stream.
        assert!(old.held_out_puzzles_drawn(TaskKind::Maze, 5).unwrap().is_empty());
    }

    #[test]
    fn a_split_training_stream_meets_no_evaluation_puzzle() {
        // The training stream as the trainers draw it now, against the evaluation instances.
        let params = TaskParams { size: 4, frames: 5 };
        let evaluation = held_out_seeds(TaskKind::Maze, &params, 0, 200, &HashSet::new()).unwrap();
        let evaluation: HashSet<PuzzleKey> = evaluation
            .seeds
            .iter()
            .map(|&seed| TaskKind::Maze.generate(seed, &params).unwrap().puzzle_key())
            .collect();
        let mut met_before = 0;
        for offset in 0..20_000 {
            let seed = (1 << 63) | offset;
            let trained = TaskKind::Maze.generate_for_training(seed, &params).unwrap().puzzle_key();
            assert!(!evaluation.contains(&trained), "training seed {seed} draws an evaluation puzzle");
            met_before += usize::from(
                evaluation.contains(&TaskKind::Maze.generate(seed, &params).unwrap().puzzle_key()),
            );
        }
        assert!(met_before > 0, "the unsplit stream meets evaluation puzzles: the test can fail");
        assert!(
            stream(StreamSplit::Train, 20_000).held_out_puzzles_drawn(TaskKind::Maze, 4).unwrap().is_empty()
        );
    }

    #[test]
    fn the_record_is_read_checked_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TrainingStream::read(dir.path()).unwrap(), None);
        let path = dir.path().join(TRAINING_STREAM_FILE);
        std::fs::write(&path, serde_json::to_string(&stream(StreamSplit::None, 3)).unwrap()).unwrap();
        assert_eq!(TrainingStream::read(dir.path()).unwrap(), Some(stream(StreamSplit::None, 3)));
        let huge = serde_json::to_string(&stream(StreamSplit::None, u64::MAX)).unwrap();
        std::fs::write(&path, huge).unwrap();
        let error = TrainingStream::read(dir.path()).unwrap_err().to_string();
        assert!(error.contains("at most") && error.contains(TRAINING_STREAM_FILE), "{error}");
        std::fs::write(&path, r#"{"streams": [{"task": "chess"}]}"#).unwrap();
        assert!(TrainingStream::read(dir.path()).is_err());
        let chess = r#"{"streams": [{"task": "chess", "size": 4, "frames": 5, "first_seed": 0, "count": 1, "split": "none"}]}"#;
        std::fs::write(&path, chess).unwrap();
        assert!(TrainingStream::read(dir.path()).unwrap_err().to_string().contains("chess"));
    }
}
