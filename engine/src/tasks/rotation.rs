//! Rotation (Transformation): turn the pattern a quarter turn clockwise about the grid's centre.
//!
//! The puzzle is a few coloured blocks (one cell each) on a white `size x size` grid. Cell
//! `(r, c)` goes to `(c, size - 1 - r)`, keeping its colour; the rotation is a rule, so the
//! answer is unique. Patterns are drawn so that no block lands on a block of its own colour
//! (the puzzle copied forward is then wrong on every block) and so that the other turns and the
//! mirror images get at most half the answer's blocks right. The ground truth changes the cells
//! that differ between puzzle and answer in reading order.
//!
//! Scorer, reading the puzzle's pixels and the last frame's:
//! - `placement` (60%): the answer's blocks (the puzzle's, rotated) present in their colour;
//! - `clearing` (30%): cells that held a block in the puzzle and are empty in the answer, now
//!   white;
//! - `no_strays` (10%): cells empty in both puzzle and answer, still white.
//!
//! Solved: all three parts full.
use super::error::{Result, TaskError};
use super::grid::{Cell, CellGrid, CellReading, render, share, unfold_count};
use super::palette::Color;
use super::rng::SplitMix64;
use super::video::TaskVideo;
use super::{Answer, Score, TaskInstance, TaskKind, TaskParams};

/// Blocks in a pattern: from `size / 2 + 1` to `size + 1`.
const fn block_range(size: usize) -> (usize, usize) {
    (size / 2 + 1, size + 1)
}

/// Patterns tried before giving up (each succeeds with high probability for `size >= 4`).
const MAX_ATTEMPTS: usize = 10_000;

const COLORS: [Color; 5] = [Color::White, Color::Blue, Color::Red, Color::Green, Color::Orange];

const PROMPT: &str = "The image shows coloured blocks on a white grid. Rotate the whole pattern a quarter \
turn clockwise about the centre of the grid, keeping each block's colour.";

/// Where cell `cell` of a `size`-wide grid goes under a quarter turn clockwise.
const fn rotate(cell: Cell, size: usize) -> Cell {
    Cell::new(cell.col, size - 1 - cell.row)
}

/// The pattern rotated.
fn rotated(grid: &CellGrid, size: usize) -> CellGrid {
    let mut out = CellGrid::new(size, size, Color::White);
    for cell in grid.cells() {
        out.set(rotate(cell, size), grid.get(cell));
    }
    out
}

/// The pattern mirrored left-right (`horizontal`) or top-bottom.
fn mirrored(grid: &CellGrid, size: usize, horizontal: bool) -> CellGrid {
    let mut out = CellGrid::new(size, size, Color::White);
    for cell in grid.cells() {
        let image = if horizontal {
            Cell::new(cell.row, size - 1 - cell.col)
        } else {
            Cell::new(size - 1 - cell.row, cell.col)
        };
        out.set(image, grid.get(cell));
    }
    out
}

/// How many of `answer`'s blocks `other` has in the same cell and colour.
fn shared_blocks(answer: &CellGrid, other: &CellGrid) -> usize {
    answer
        .cells()
        .filter(|&cell| answer.get(cell) != Color::White && other.get(cell) == answer.get(cell))
        .count()
}

/// A pattern of blocks no one of which lands on a block of its own colour, and whose answer
/// shares at most half its blocks with the other quarter turns and the mirror images (so
/// that a wrong transformation is clearly wrong).
fn draw_pattern(rng: &mut SplitMix64, size: usize) -> Result<CellGrid> {
    let (low, high) = block_range(size);
    for _ in 0..MAX_ATTEMPTS {
        let count = rng.range(low, high);
        let mut grid = CellGrid::new(size, size, Color::White);
        let mut placed = 0;
        while placed < count {
            let cell = Cell::new(rng.below(size), rng.below(size));
            if grid.get(cell) == Color::White {
                grid.set(cell, Color::BLOCKS[rng.below(Color::BLOCKS.len())]);
                placed += 1;
            }
        }
        let turned = rotated(&grid, size);
        let half = rotated(&turned, size);
        let others = [
            grid.clone(),
            half.clone(),
            rotated(&half, size),
            mirrored(&grid, size, true),
            mirrored(&grid, size, false),
        ];
        let distinct = shared_blocks(&turned, &others[0]) == 0
            && others[1..].iter().all(|other| 2 * shared_blocks(&turned, other) <= count);
        if distinct {
            return Ok(grid);
        }
    }
    Err(TaskError::Params(format!("no rotation pattern found for size {size}")))
}

pub(crate) fn generate(seed: u64, params: &TaskParams) -> Result<TaskInstance> {
    let size = params.size;
    let mut rng = SplitMix64::new(seed);
    let puzzle = draw_pattern(&mut rng, size)?;
    let solved = rotated(&puzzle, size);
    let changed: Vec<Cell> = puzzle.cells().filter(|&cell| puzzle.get(cell) != solved.get(cell)).collect();
    let frames: Vec<CellGrid> = (0..params.frames)
        .map(|frame_idx| {
            let mut frame = puzzle.clone();
            for &cell in &changed[..unfold_count(frame_idx, params.frames, changed.len())] {
                frame.set(cell, solved.get(cell));
            }
            frame
        })
        .collect();
    let ground_truth = render(&frames);
    let blocks = solved.cells().filter(|&cell| solved.get(cell) != Color::White).collect();
    Ok(TaskInstance {
        kind: TaskKind::Rotation,
        seed,
        params: *params,
        prompt: PROMPT.to_owned(),
        first_frame: ground_truth.repeat_frame(0, 1),
        ground_truth,
        answer: Answer::Rotation { blocks },
    })
}

/// Scores the last frame of `video` (see the module docs).
pub(crate) fn score(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> Score {
    let size = instance.first_frame.height() / 2;
    let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
    let last = CellReading::read_within(video, video.frames() - 1, &COLORS, tolerance);
    let grid = CellGrid::new(size, size, Color::White);
    let is_block = |class: Option<Color>| class.is_some_and(|color| color != Color::White);
    // The answer, from the puzzle's pixels: what rotates onto each cell.
    let expected = |cell: Cell| puzzle.get(rotate(rotate(rotate(cell, size), size), size));

    let (mut targets, mut placed, mut vacated, mut cleared, mut empty, mut clean) = (0, 0, 0, 0, 0, 0);
    for cell in grid.cells() {
        let (want, was, now) = (expected(cell), puzzle.get(cell), last.get(cell));
        if is_block(want) {
            targets += 1;
            placed += usize::from(now == want);
        } else if is_block(was) {
            vacated += 1;
            cleared += usize::from(now == Some(Color::White));
        } else {
            empty += 1;
            clean += usize::from(now == Some(Color::White));
        }
    }
    Score::weighted(
        &[
            ("placement", 60, share(placed, targets, 1.0)),
            ("clearing", 30, share(cleared, vacated, 1.0)),
            ("no_strays", 10, share(clean, empty, 1.0)),
        ],
        &[("pattern_turned", placed == targets && cleared == vacated), ("no_strays", clean == empty)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(seed: u64) -> TaskInstance {
        TaskKind::Rotation.generate(seed, &TaskKind::Rotation.default_params()).unwrap()
    }

    /// The last frame of the ground truth replaced by `grid`.
    fn answered_with(instance: &TaskInstance, grid: &CellGrid) -> TaskVideo {
        TaskVideo::concat(&[instance.first_frame.clone(), render(std::slice::from_ref(grid))]).unwrap()
    }

    fn read_grid(video: &TaskVideo, frame_idx: usize, size: usize) -> CellGrid {
        let reading = CellReading::read(video, frame_idx, &COLORS);
        let mut grid = CellGrid::new(size, size, Color::White);
        for cell in grid.cells() {
            grid.set(cell, reading.get(cell).unwrap());
        }
        grid
    }

    #[test]
    fn the_answer_is_the_puzzle_turned_clockwise() {
        for seed in 0..50 {
            let instance = instance(seed);
            let puzzle = read_grid(&instance.first_frame, 0, 6);
            let solved = read_grid(&instance.ground_truth, 4, 6);
            for cell in puzzle.cells() {
                assert_eq!(solved.get(Cell::new(cell.col, 5 - cell.row)), puzzle.get(cell), "seed {seed}");
            }
            // Four quarter turns are the identity.
            let turned = (0..4).fold(puzzle.clone(), |grid, _| rotated(&grid, 6));
            assert_eq!(turned, puzzle);
            let Answer::Rotation { blocks } = &instance.answer else { panic!("not a rotation answer") };
            assert!(blocks.iter().all(|&cell| solved.get(cell) != Color::White));
        }
    }

    #[test]
    fn wrong_turns_score_low() {
        for seed in 0..50 {
            let instance = instance(seed);
            let puzzle = read_grid(&instance.first_frame, 0, 6);
            let counter = (0..3).fold(puzzle.clone(), |grid, _| rotated(&grid, 6));
            let half = rotated(&rotated(&puzzle, 6), 6);
            let mut mirrored = CellGrid::new(6, 6, Color::White);
            for cell in puzzle.cells() {
                mirrored.set(Cell::new(cell.row, 5 - cell.col), puzzle.get(cell));
            }
            // At most half the blocks right: placement <= 0.5 of its 60%.
            for (name, grid) in [("counter-clockwise", counter), ("half turn", half), ("mirrored", mirrored)]
            {
                let score = instance.score(&answered_with(&instance, &grid)).unwrap();
                assert!(!score.solved, "seed {seed} {name}");
                assert!(score.value <= 0.7 + 1e-6, "seed {seed} {name}: {score:?}");
            }
        }
    }
}
