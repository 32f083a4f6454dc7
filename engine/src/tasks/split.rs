//! The training / held-out split of puzzle space.
//!
//! Different seeds can draw the same puzzle (there are only so many 4x4 mazes), so holding out
//! seeds does not hold out puzzles. The split is made on the puzzle itself: a [`PuzzleKey`]
//! hashes the task, the image size and the puzzle frame's colours, and one key in
//! [`HELD_OUT_ONE_IN`] is reserved for evaluation. Training draws only the other keys
//! ([`TaskKind::generate_for_training`]); evaluation draws only reserved ones, each puzzle once
//! ([`held_out_seeds`]).
//!
//! The key, so that other tools can compute it: FNV-1a (64-bit) over the task's name in UTF-8, a
//! zero byte, the puzzle's height and width as little-endian `u32`, then the puzzle frame's
//! values channel by channel in `[3, H, W]` order, each as the byte `round((v + 1) * 127.5)`;
//! the hash is then mixed by `splitmix64`'s finaliser (`z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
//! z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31`). A puzzle is held out when the mixed key
//! is divisible by [`HELD_OUT_ONE_IN`].
use std::collections::HashSet;

use super::error::{Result, TaskError};
use super::rng::SplitMix64;
use super::{TaskInstance, TaskKind, TaskParams};

/// One puzzle key in this many is reserved for evaluation (6.25% of puzzle space).
pub const HELD_OUT_ONE_IN: u64 = 16;

/// How many seeds a training draw tries before it gives up: with one key in 16 reserved, 64
/// reserved draws in a row happen with probability `16^-64` unless the task has almost no
/// puzzles at that size.
const TRAINING_ATTEMPTS: u64 = 64;

/// The most seeds [`held_out_seeds`] looks at per instance asked for.
const SCAN_PER_INSTANCE: u64 = 4096;

/// A puzzle's identity: equal keys, equal puzzles (see the module docs for the hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PuzzleKey(pub u64);

/// Which part of puzzle space a puzzle lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training may draw it.
    Train,
    /// Reserved for evaluation: training never draws it.
    HeldOut,
}

impl Split {
    /// The name used on command lines and in result files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::HeldOut => "held-out",
        }
    }
}

impl PuzzleKey {
    /// The split this key falls in.
    #[must_use]
    pub const fn split(self) -> Split {
        if self.0.is_multiple_of(HELD_OUT_ONE_IN) { Split::HeldOut } else { Split::Train }
    }
}

impl TaskInstance {
    /// The key of this instance's puzzle (its first frame).
    #[must_use]
    pub fn puzzle_key(&self) -> PuzzleKey {
        const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
        const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;
        let mut hash = FNV_OFFSET;
        let mut eat = |byte: u8| hash = (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        self.kind.name().bytes().for_each(&mut eat);
        eat(0);
        let frame = &self.first_frame;
        for side in [frame.height(), frame.width()] {
            (side as u32).to_le_bytes().into_iter().for_each(&mut eat);
        }
        for &value in frame.values() {
            eat(((value + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8);
        }
        PuzzleKey(mix(hash))
    }

    /// The split this instance's puzzle lies in.
    #[must_use]
    pub fn split(&self) -> Split {
        self.puzzle_key().split()
    }
}

/// `splitmix64`'s finaliser.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl TaskKind {
    /// The training stream's instance for `seed`: the instance of `seed` when its puzzle is a
    /// training puzzle, otherwise the first training puzzle among the seeds a `splitmix64`
    /// stream started at `seed` draws (their top bit kept as `seed`'s), so no held-out puzzle is
    /// ever trained on.
    pub fn generate_for_training(self, seed: u64, params: &TaskParams) -> Result<TaskInstance> {
        let mut redraws = SplitMix64::new(seed);
        let mut candidate = seed;
        for _ in 0..TRAINING_ATTEMPTS {
            let instance = self.generate(candidate, params)?;
            if instance.split() == Split::Train {
                return Ok(instance);
            }
            candidate = (redraws.next_u64() & !(1 << 63)) | (seed & (1 << 63));
        }
        Err(TaskError::Params(format!(
            "{} size {}: {TRAINING_ATTEMPTS} draws from seed {seed} found no training puzzle",
            self.name(),
            params.size
        )))
    }
}

/// Which instances [`held_out_seeds`] picked, and what it passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOutDraw {
    /// The seeds of the picked instances, increasing: distinct held-out puzzles.
    pub seeds: Vec<u64>,
    /// Seeds looked at, from the first one.
    pub scanned: u64,
    /// Held-out puzzles passed over because they are in `exclude` (a model's training drew them).
    pub excluded: u64,
    /// Held-out puzzles passed over because an earlier seed drew the same puzzle.
    pub repeats: u64,
}

/// The first `count` seeds from `first_seed` on whose puzzles are held out, distinct, and not in
/// `exclude`. Looks at no more than 4096 seeds per instance asked for, and says so when they held
/// too few puzzles.
pub fn held_out_seeds<S: std::hash::BuildHasher>(
    kind: TaskKind,
    params: &TaskParams,
    first_seed: u64,
    count: usize,
    exclude: &HashSet<PuzzleKey, S>,
) -> Result<HeldOutDraw> {
    let budget = (count as u64).saturating_mul(SCAN_PER_INSTANCE).max(SCAN_PER_INSTANCE);
    let mut draw =
        HeldOutDraw { seeds: Vec::with_capacity(count.min(1 << 16)), scanned: 0, excluded: 0, repeats: 0 };
    let mut seen = HashSet::new();
    let mut seed = first_seed;
    while draw.seeds.len() < count {
        if draw.scanned == budget || (draw.scanned > 0 && seed == first_seed) {
            return Err(TaskError::Params(format!(
                "{} size {}: only {} distinct held-out puzzles among the {} seeds from {first_seed} \
                 ({} more were drawn in training, {} repeated); ask for fewer instances",
                kind.name(),
                params.size,
                draw.seeds.len(),
                draw.scanned,
                draw.excluded,
                draw.repeats
            )));
        }
        let key = kind.generate(seed, params)?.puzzle_key();
        draw.scanned += 1;
        if key.split() == Split::HeldOut {
            if exclude.contains(&key) {
                draw.excluded += 1;
            } else if seen.insert(key) {
                draw.seeds.push(seed);
            } else {
                draw.repeats += 1;
            }
        }
        seed = seed.wrapping_add(1);
    }
    Ok(draw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maze(size: usize) -> TaskParams {
        TaskParams { size, frames: 5 }
    }

    #[test]
    fn the_key_is_the_puzzle_not_the_seed_nor_the_frame_count() {
        let a = TaskKind::Maze.generate(7, &maze(4)).unwrap();
        let longer = TaskKind::Maze.generate(7, &TaskParams { size: 4, frames: 9 }).unwrap();
        assert_eq!(a.puzzle_key(), longer.puzzle_key());
        // Two seeds that draw the same 4x4 maze have the same key; different mazes, other keys.
        let mut seen: std::collections::HashMap<Vec<u32>, (u64, PuzzleKey)> =
            std::collections::HashMap::new();
        let mut repeats = 0;
        for seed in 0..20_000 {
            let b = TaskKind::Maze.generate(seed, &maze(4)).unwrap();
            let pixels: Vec<u32> = b.first_frame.values().iter().map(|v| v.to_bits()).collect();
            match seen.get(&pixels) {
                Some(&(_, key)) => {
                    assert_eq!(key, b.puzzle_key());
                    repeats += 1;
                }
                None => {
                    seen.insert(pixels, (seed, b.puzzle_key()));
                }
            }
        }
        assert!(repeats > 0, "4x4 mazes repeat within 20,000 seeds");
        let keys: std::collections::HashSet<PuzzleKey> = seen.values().map(|&(_, key)| key).collect();
        assert_eq!(keys.len(), seen.len(), "distinct mazes, distinct keys");
        // The same pixels as another task are another puzzle.
        let rotation = TaskKind::Rotation.generate(7, &maze(6)).unwrap();
        let as_symmetry = TaskInstance { kind: TaskKind::Symmetry, ..rotation.clone() };
        assert_ne!(rotation.puzzle_key(), as_symmetry.puzzle_key());
    }

    #[test]
    fn the_key_is_the_documented_hash() {
        // A 1x1 white frame of task "maze", computed by hand from the module docs' recipe.
        let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
        for byte in b"maze\0\x01\x00\x00\x00\x01\x00\x00\x00\xff\xff\xff" {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01B3);
        }
        let white = crate::tasks::TaskVideo::filled(1, 1, 1, crate::tasks::palette::Color::White);
        let instance = TaskInstance {
            kind: TaskKind::Maze,
            seed: 0,
            params: maze(2),
            prompt: String::new(),
            first_frame: white.clone(),
            ground_truth: white,
            answer: crate::tasks::Answer::Maze { path: Vec::new() },
        };
        assert_eq!(instance.puzzle_key(), PuzzleKey(mix(hash)));
    }

    #[test]
    fn about_one_puzzle_in_sixteen_is_held_out_in_every_task() {
        for kind in TaskKind::ALL {
            let params = kind.default_params();
            let held =
                (0..4000).filter(|&seed| kind.generate(seed, &params).unwrap().split() == Split::HeldOut);
            let share = held.count() as f64 / 4000.0;
            // 250 expected; a binomial's 5-sigma band is 250 +- 77.
            assert!((0.043..0.082).contains(&share), "{}: {share}", kind.name());
        }
    }

    #[test]
    fn training_draws_never_a_held_out_puzzle_and_keeps_the_seeds_own_otherwise() {
        let params = maze(4);
        let mut redrawn = 0;
        for offset in 0..3000 {
            let seed = (1 << 63) | offset;
            let own = TaskKind::Maze.generate(seed, &params).unwrap();
            let trained = TaskKind::Maze.generate_for_training(seed, &params).unwrap();
            assert_eq!(trained.split(), Split::Train);
            if own.split() == Split::Train {
                assert_eq!(trained.first_frame, own.first_frame);
            } else {
                redrawn += 1;
                assert!(trained.seed >> 63 == 1, "a redraw stays a training seed");
            }
        }
        assert!(redrawn > 100, "{redrawn} of 3000 redrawn");
    }

    #[test]
    fn held_out_draws_are_distinct_reserved_puzzles_and_skip_the_excluded() {
        let params = maze(4);
        let first = held_out_seeds(TaskKind::Maze, &params, 0, 40, &HashSet::new()).unwrap();
        assert_eq!(first.seeds.len(), 40);
        let keys: Vec<PuzzleKey> = first
            .seeds
            .iter()
            .map(|&seed| TaskKind::Maze.generate(seed, &params).unwrap().puzzle_key())
            .collect();
        assert!(keys.iter().all(|key| key.split() == Split::HeldOut));
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 40, "distinct puzzles");
        assert!(first.scanned >= 40 * 8, "one in 16 is held out: {} scanned", first.scanned);
        // Excluding the first ten puzzles moves on to the next ones.
        let exclude: HashSet<PuzzleKey> = keys[..10].iter().copied().collect();
        let rest = held_out_seeds(TaskKind::Maze, &params, 0, 30, &exclude).unwrap();
        assert_eq!(rest.seeds[..], first.seeds[10..]);
        assert!(rest.excluded >= 10);
        // A 2x2 maze has a handful of puzzles: asking for many says so instead of looping.
        let error =
            held_out_seeds(TaskKind::Maze, &maze(2), 0, 100, &HashSet::new()).unwrap_err().to_string();
        assert!(error.contains("distinct held-out puzzles"), "{error}");
    }
}
