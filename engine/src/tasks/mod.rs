//! VBVR-style reasoning tasks: image + prompt -> video, scored by rules that read pixels only.
//!
//! Each task draws a small RGB video `[3, F, H, W]` in `[-1, 1]` (a [`TaskVideo`]): frame 0 is
//! the puzzle, the later frames unfold the solution, the last frame shows it solved. Instances
//! are deterministic in their seed (a documented `splitmix64` stream) and have exactly one
//! correct answer. One cell of the puzzle is one 2x2 pixel patch, so under the model's 1x2x2
//! patching each cell is one token, and [`TaskInstance::token_targets`] labels tokens for probes.
//!
//! | task | VBVR faculty | puzzle -> answer |
//! |---|---|---|
//! | [`TaskKind::Maze`] | Spatiality | draw the orange path from the green start to the red flag |
//! | [`TaskKind::Symmetry`] | Abstraction | add the blocks that make the pattern mirror-symmetric |
//! | [`TaskKind::Gravity`] | Knowledge | let the blocks fall onto the ground, ledges and each other |
//! | [`TaskKind::FloodFill`] | Perception | fill the walled region that holds the blue marker |
//! | [`TaskKind::Rotation`] | Transformation | turn the pattern a quarter turn clockwise |
//!
//! The faculties are VBVR-Bench's (`TASK_CATEGORY_MAP` in VBVR-EvalKit): its maze (O-39) is
//! Spatiality, symmetry completion (O-49) Abstraction, gravity physics (O-62) Knowledge, and its
//! region and colour-reading tasks Perception. Each scorer returns a [`Score`] in `[0, 1]` as a
//! weighted sum of named parts, exactly 1.0 on the ground truth.
mod error;
mod flood_fill;
mod gravity;
mod grid;
mod maze;
mod palette;
mod progress;
pub(crate) mod rng;
mod rotation;
mod split;
mod symmetry;
mod video;

pub use error::{Result, TaskError};
pub use grid::Cell;
pub use palette::{Color, MAX_TOLERANCE, TOLERANCE, classify, classify_within, nearest};
pub use split::{HELD_OUT_ONE_IN, HeldOutDraw, PuzzleKey, Split, held_out_seeds};
pub use video::TaskVideo;

/// VBVR-Bench's five groups of cognitive faculties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Faculty {
    Abstraction,
    Knowledge,
    Perception,
    Spatiality,
    Transformation,
}

/// The tasks Stepscope can generate and score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Maze,
    Symmetry,
    Gravity,
    FloodFill,
    Rotation,
}

/// How big and how long an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskParams {
    /// Maze: cells per side `n` (the image is `2n + 2` pixels square). Other tasks: cells per side
    /// (the image is `2 size` pixels square).
    pub size: usize,
    /// F, frames in the video (>= 2): the puzzle, then the answer unfolding.
    pub frames: usize,
}

impl TaskKind {
    /// Every task.
    pub const ALL: [Self; 5] = [Self::Maze, Self::Symmetry, Self::Gravity, Self::FloodFill, Self::Rotation];

    /// Short lower-case name, as used on command lines and in trajectory files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Maze => "maze",
            Self::Symmetry => "symmetry",
            Self::Gravity => "gravity",
            Self::FloodFill => "flood_fill",
            Self::Rotation => "rotation",
        }
    }

    /// The task called `name` (see [`TaskKind::name`]).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| TaskError::UnknownTask(name.to_owned()))
    }

    /// The VBVR faculty the task exercises.
    #[must_use]
    pub const fn faculty(self) -> Faculty {
        match self {
            Self::Maze => Faculty::Spatiality,
            Self::Symmetry => Faculty::Abstraction,
            Self::Gravity => Faculty::Knowledge,
            Self::FloodFill => Faculty::Perception,
            Self::Rotation => Faculty::Transformation,
        }
    }

    /// 5 frames of a 12x12-pixel image (a 5x5-cell maze, 6x6 cells elsewhere).
    #[must_use]
    pub const fn default_params(self) -> TaskParams {
        let size = match self {
            Self::Maze => 5,
            Self::Symmetry | Self::Gravity | Self::FloodFill | Self::Rotation => 6,
        };
        TaskParams { size, frames: 5 }
    }

    /// The sizes [`TaskKind::generate`] accepts.
    #[must_use]
    pub const fn size_range(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Self::Maze => 2..=16,
            Self::Symmetry | Self::Gravity | Self::FloodFill | Self::Rotation => 4..=16,
        }
    }

    /// The instance of this task for `seed`.
    pub fn generate(self, seed: u64, params: &TaskParams) -> Result<TaskInstance> {
        if !self.size_range().contains(&params.size) {
            return Err(TaskError::Params(format!(
                "{} size {} is outside {:?}",
                self.name(),
                params.size,
                self.size_range()
            )));
        }
        if params.frames < 2 {
            return Err(TaskError::Params(format!("{} frames: need at least 2", params.frames)));
        }
        match self {
            Self::Maze => maze::generate(seed, params),
            Self::Symmetry => symmetry::generate(seed, params),
            Self::Gravity => Ok(gravity::generate(seed, params)),
            Self::FloodFill => Ok(flood_fill::generate(seed, params)),
            Self::Rotation => rotation::generate(seed, params),
        }
    }
}

/// What the correct answer is, in cells (token coordinates, see [`Cell`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The maze's cells from start to flag, both included (maze cell `(r, c)` is token `(r, c)`).
    Maze { path: Vec<Cell> },
    /// The cells to fill, in the order the ground truth fills them.
    Symmetry { missing: Vec<Cell> },
    /// The cells the blocks rest on at the end, and how many ticks (one cell each) they fall.
    Gravity { resting: Vec<Cell>, ticks: usize },
    /// The marker's region, in the order the fill reaches it (the marker first).
    FloodFill { region: Vec<Cell> },
    /// The cells that hold a block once the pattern is turned.
    Rotation { blocks: Vec<Cell> },
}

impl Answer {
    /// The cells [`TaskInstance::token_targets`] marks.
    #[must_use]
    pub fn cells(&self) -> &[Cell] {
        match self {
            Self::Maze { path } => path,
            Self::Symmetry { missing } => missing,
            Self::Gravity { resting, .. } => resting,
            Self::FloodFill { region } => region,
            Self::Rotation { blocks } => blocks,
        }
    }
}

/// One generated task instance.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInstance {
    pub kind: TaskKind,
    pub seed: u64,
    pub params: TaskParams,
    /// What the model is asked, in English.
    pub prompt: String,
    /// The puzzle, `[3, 1, H, W]`.
    pub first_frame: TaskVideo,
    /// The solution unfolding, `[3, F, H, W]`; frame 0 equals `first_frame`.
    pub ground_truth: TaskVideo,
    pub answer: Answer,
}

impl TaskInstance {
    /// Scores a produced video `[3, F', H, W]` (any F' >= 1) against this instance at the
    /// palette's [`TOLERANCE`] (see [`TaskInstance::score_within`]).
    pub fn score(&self, video: &TaskVideo) -> Result<Score> {
        self.score_within(video, TOLERANCE)
    }

    /// Scores a produced video `[3, F', H, W]` (any F' >= 1) against this instance, reading
    /// pixels only (the produced video's, and this instance's puzzle and solved frames, as
    /// VBVR-Bench reads its ground truth); a produced pixel counts as a palette colour within
    /// `tolerance` (in `(0, MAX_TOLERANCE]`). The task's scorer reads the last frame; every task
    /// also checks the frames between the first and the last (`frames_unfold`): each pixel shows
    /// its puzzle colour or its answer colour and, once it shows the answer, keeps it (gravity:
    /// the blocks only fall, each column keeping its blocks in order, the scene unchanged).
    pub fn score_within(&self, video: &TaskVideo, tolerance: f32) -> Result<Score> {
        if !(tolerance > 0.0 && tolerance <= MAX_TOLERANCE) {
            return Err(TaskError::Params(format!(
                "colour tolerance {tolerance}: give a value in (0, {MAX_TOLERANCE}]"
            )));
        }
        let (height, width) = (self.first_frame.height(), self.first_frame.width());
        if video.height() != height || video.width() != width {
            return Err(TaskError::SizeMismatch {
                height,
                width,
                found_height: video.height(),
                found_width: video.width(),
            });
        }
        let mut score = match self.kind {
            TaskKind::Maze => maze::score(self, video, tolerance),
            TaskKind::Symmetry => symmetry::score(self, video, tolerance),
            TaskKind::Gravity => gravity::score(self, video, tolerance),
            TaskKind::FloodFill => flood_fill::score(self, video, tolerance),
            TaskKind::Rotation => rotation::score(self, video, tolerance),
        };
        let unfolds = match self.kind {
            TaskKind::Gravity => gravity::frames_fall(self, video, tolerance),
            _ => progress::frames_unfold(self, video, tolerance),
        };
        score.add_check("frames_unfold", unfolds);
        Ok(score)
    }

    /// The token grid `(H / 2, W / 2)`.
    #[must_use]
    pub fn token_grid(&self) -> (usize, usize) {
        (self.first_frame.height() / 2, self.first_frame.width() / 2)
    }

    /// A probe target per token of one frame, `[H / 2, W / 2]` row-major: 1.0 on the cells of
    /// [`Answer::cells`] (maze: on the solution path; symmetry: to be filled; gravity: a block
    /// rests there at the end; flood fill: in the marker's region), 0.0 elsewhere.
    #[must_use]
    pub fn token_targets(&self) -> Vec<f32> {
        let (rows, cols) = self.token_grid();
        let mut targets = vec![0.0; rows * cols];
        for cell in self.answer.cells() {
            targets[cell.row * cols + cell.col] = 1.0;
        }
        targets
    }
}

/// A scorer's verdict on one video.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The weighted sum of the parts, in `[0, 1]`.
    pub value: f32,
    /// Whether the video shows exactly the answer: every one of [`Score::checks`] passes.
    pub solved: bool,
    /// Each part's name and value in `[0, 1]`, in the order of their weights.
    pub parts: Vec<(&'static str, f32)>,
    /// The rules "solved" is made of, each by name with whether the video passes it.
    pub checks: Vec<(&'static str, bool)>,
}

impl Score {
    /// Sums `(name, weight in percent, value)` parts whose weights add up to 100 (integer weights
    /// keep a perfect video at exactly 1.0); solved when every check passes.
    pub(crate) fn weighted(parts: &[(&'static str, u32, f64)], checks: &[(&'static str, bool)]) -> Self {
        debug_assert_eq!(parts.iter().map(|part| part.1).sum::<u32>(), 100);
        let sum: f64 =
            parts.iter().map(|&(_, weight, value)| f64::from(weight) * value.clamp(0.0, 1.0)).sum();
        Self {
            value: (sum / 100.0).clamp(0.0, 1.0) as f32,
            solved: checks.iter().all(|&(_, passed)| passed),
            parts: parts.iter().map(|&(name, _, value)| (name, value.clamp(0.0, 1.0) as f32)).collect(),
            checks: checks.to_vec(),
        }
    }

    /// Adds a rule to the verdict.
    pub(crate) fn add_check(&mut self, name: &'static str, passed: bool) {
        self.checks.push((name, passed));
        self.solved &= passed;
    }

    /// The names of the checks the video fails.
    pub fn failed_checks(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.checks.iter().filter(|(_, passed)| !passed).map(|&(name, _)| name)
    }
}

#[cfg(test)]
mod tests;
