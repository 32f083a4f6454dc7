//! Which task instances `eval`, `probe` and `ensemble` run: held-out puzzles the model was never
//! trained on (the default), or plain consecutive seeds.
use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use stepscope_engine::tasks::{HELD_OUT_ONE_IN, TaskKind, TaskParams, held_out_seeds};
use stepscope_engine::training::{TRAINING_STREAM_FILE, TrainingStream};

/// Where instances come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InstanceSplit {
    /// Distinct puzzles of the held-out split, minus any the model's training stream drew.
    HeldOut,
    /// Every seed from the first one, puzzles repeated or trained on included (not held out).
    All,
}

/// The instance seeds picked, and a line saying how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instances {
    pub seeds: Vec<u64>,
    /// The split's name as result files write it: `held-out` or `all`.
    pub split: &'static str,
    /// One sentence for the terminal: where the instances come from and what was passed over.
    pub summary: String,
}

/// `count` instances of `kind` at `params` from seed `first_seed` on, for the model in
/// `model_dir`. Held out: the model folder's `training_stream.json` is replayed and every
/// held-out puzzle it drew is passed over.
pub fn pick_instances(
    model_dir: &Path,
    kind: TaskKind,
    params: &TaskParams,
    (split, first_seed, count): (InstanceSplit, u64, u64),
) -> Result<Instances> {
    if count == 0 {
        bail!("--instances must be at least 1");
    }
    let label = format!("{} {}", kind.name(), params.size);
    match split {
        InstanceSplit::All => {
            let end = first_seed.checked_add(count).context("--seed-offset + --instances overflows")?;
            Ok(Instances {
                seeds: (first_seed..end).collect(),
                split: "all",
                summary: format!(
                    "{label}: seeds {first_seed}-{} (--split all: not held out; puzzles may repeat or have been trained on)",
                    end - 1
                ),
            })
        }
        InstanceSplit::HeldOut => {
            let count = usize::try_from(count).context("--instances is too large")?;
            let stream = TrainingStream::read(model_dir)?;
            let drawn = match &stream {
                Some(stream) => stream.held_out_puzzles_drawn(kind, params.size)?,
                None => HashSet::new(),
            };
            let draw = held_out_seeds(kind, params, first_seed, count, &drawn)
                .with_context(|| format!("picking held-out {label} instances"))?;
            let checked = match &stream {
                Some(stream) => format!(
                    "{} of its held-out puzzles were drawn by this model's training stream ({} seeds of {label} \
                     replayed from {TRAINING_STREAM_FILE}) and passed over",
                    draw.excluded,
                    stream.seeds_of(kind, params.size)
                ),
                None => format!(
                    "{} has no {TRAINING_STREAM_FILE}: its training was not checked against these puzzles",
                    model_dir.display()
                ),
            };
            let (first, last) =
                (draw.seeds.first().copied().unwrap_or(0), draw.seeds.last().copied().unwrap_or(0));
            Ok(Instances {
                summary: format!(
                    "{label}: {} distinct held-out puzzles (1 puzzle key in {HELD_OUT_ONE_IN}), seeds {first}-{last}; \
                     {} seeds scanned, {} repeated puzzles skipped; {checked}",
                    draw.seeds.len(),
                    draw.scanned,
                    draw.repeats
                ),
                seeds: draw.seeds,
                split: "held-out",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use stepscope_engine::tasks::Split;
    use stepscope_engine::training::{StreamRange, StreamSplit};

    use super::*;

    #[test]
    fn held_out_instances_pass_over_what_the_model_trained_on() {
        let dir = tempfile::tempdir().unwrap();
        let params = TaskParams { size: 4, frames: 5 };
        // Picked from where the stream below drew, so that its puzzles are among the candidates.
        let pick = |split, count| {
            pick_instances(dir.path(), TaskKind::Maze, &params, (split, 1 << 63, count)).unwrap()
        };
        let unchecked = pick(InstanceSplit::HeldOut, 30);
        assert!(unchecked.summary.contains("was not checked"), "{}", unchecked.summary);
        let key = |seed: u64| TaskKind::Maze.generate(seed, &params).unwrap().puzzle_key();
        assert!(unchecked.seeds.iter().all(|&seed| key(seed).split() == Split::HeldOut));
        // A model trained on the first 5,000 training seeds of 4x4 mazes, unsplit.
        let range = StreamRange {
            task: "maze".into(),
            size: 4,
            frames: 5,
            first_seed: 1 << 63,
            count: 5000,
            split: StreamSplit::None,
        };
        let stream = TrainingStream { streams: vec![range], note: String::new() };
        std::fs::write(dir.path().join(TRAINING_STREAM_FILE), serde_json::to_string(&stream).unwrap())
            .unwrap();
        let checked = pick(InstanceSplit::HeldOut, 30);
        let drawn = stream.held_out_puzzles_drawn(TaskKind::Maze, 4).unwrap();
        assert!(checked.seeds.iter().all(|&seed| !drawn.contains(&key(seed))));
        assert_ne!(checked.seeds, unchecked.seeds, "4x4 mazes of the stream are among the first 30");
        assert!(checked.summary.contains("5000 seeds of maze 4 replayed"), "{}", checked.summary);
        let all = pick(InstanceSplit::All, 3);
        assert_eq!((all.seeds, all.split), (vec![1 << 63, (1 << 63) + 1, (1 << 63) + 2], "all"));
    }
}
