//! Symmetry completion (VBVR O-49, Abstraction): add the blocks that make the pattern
//! mirror-symmetric about the vertical centre line.
//!
//! The puzzle is a left-right symmetric pattern of coloured blocks (one cell each, on a white
//! `size x size` grid, `size` even) from which one block of some mirror pairs was removed, on
//! either side; every pair keeps one block, so the completion is unique. The ground truth adds
//! the missing blocks from the centre line outwards.
//!
//! Scorer, after VBVR's `SymmetryCompletionEvaluator` (block preservation 0.40, symmetry 0.35,
//! fill correctness 0.20, colour consistency 0.05), reweighted so that doing nothing scores low:
//! - `completion` (60%): the puzzle's unpaired blocks whose mirror cell now holds their colour.
//! - `symmetric_additions` (25%): cells white in the puzzle and changed since, that now mirror a
//!   puzzle block of the same colour (0 with no change): no stray or miscoloured blocks.
//! - `preservation` (15%): the puzzle's blocks still there in their colours.
//!
//! All of it follows from the rule and the pixels of the puzzle; solved: all three parts full.
use super::error::{Result, TaskError};
use super::grid::{Cell, CellGrid, CellReading, render, share, unfold_count};
use super::palette::Color;
use super::rng::SplitMix64;
use super::video::TaskVideo;
use super::{Answer, Score, TaskInstance, TaskKind, TaskParams};

/// The chance, in percent, that a cell of the left half holds a block.
const BLOCK_PERCENT: usize = 40;
/// At least this many mirror pairs of blocks.
const MIN_PAIRS: usize = 3;
/// At least this many blocks to add.
const MIN_MISSING: usize = 2;

const COLORS: [Color; 5] = [Color::White, Color::Blue, Color::Red, Color::Green, Color::Orange];

const PROMPT: &str = "The image shows coloured blocks on a white grid. Complete the pattern so that it is \
mirror-symmetric about the vertical centre line: add each missing block in the colour of its mirror image.";

/// The cell mirrored about the vertical centre line of a grid `cols` wide.
const fn mirror(cell: Cell, cols: usize) -> Cell {
    Cell::new(cell.row, cols - 1 - cell.col)
}

/// Columns between the cell and the centre line (0 next to it).
const fn from_axis(cell: Cell, cols: usize) -> usize {
    let half = cols / 2;
    if cell.col < half { half - 1 - cell.col } else { cell.col - half }
}

pub(crate) fn generate(seed: u64, params: &TaskParams) -> Result<TaskInstance> {
    let size = params.size;
    if !size.is_multiple_of(2) {
        return Err(TaskError::Params(format!("symmetry size {size} must be even")));
    }
    let half = size / 2;
    let mut rng = SplitMix64::new(seed);
    let mut solved = CellGrid::new(size, size, Color::White);
    let mut pairs = Vec::new();
    let place = |solved: &mut CellGrid, cell: Cell, rng: &mut SplitMix64| {
        let color = Color::BLOCKS[rng.below(Color::BLOCKS.len())];
        solved.set(cell, color);
        solved.set(mirror(cell, size), color);
    };
    for row in 0..size {
        for col in 0..half {
            if rng.chance(BLOCK_PERCENT) {
                place(&mut solved, Cell::new(row, col), &mut rng);
                pairs.push(Cell::new(row, col));
            }
        }
    }
    while pairs.len() < MIN_PAIRS {
        let cell = Cell::new(rng.below(size), rng.below(half));
        if solved.get(cell) == Color::White {
            place(&mut solved, cell, &mut rng);
            pairs.push(cell);
        }
    }
    rng.shuffle(&mut pairs);
    let mut puzzle = solved.clone();
    let mut missing = Vec::new();
    for (idx, &left) in pairs.iter().enumerate() {
        if idx < MIN_MISSING || rng.chance(50) {
            let removed = if rng.chance(50) { left } else { mirror(left, size) };
            puzzle.set(removed, Color::White);
            missing.push(removed);
        }
    }
    missing.sort_by_key(|&cell| (from_axis(cell, size), cell.row, cell.col));

    let frames: Vec<CellGrid> = (0..params.frames)
        .map(|frame_idx| {
            let mut frame = puzzle.clone();
            for &cell in &missing[..unfold_count(frame_idx, params.frames, missing.len())] {
                frame.set(cell, solved.get(cell));
            }
            frame
        })
        .collect();
    let ground_truth = render(&frames);
    Ok(TaskInstance {
        kind: TaskKind::Symmetry,
        seed,
        params: *params,
        prompt: PROMPT.to_owned(),
        first_frame: ground_truth.repeat_frame(0, 1),
        ground_truth,
        answer: Answer::Symmetry { missing },
    })
}

/// Scores the last frame of `video` (see the module docs).
pub(crate) fn score(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> Score {
    let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
    let last = CellReading::read_within(video, video.frames() - 1, &COLORS, tolerance);
    let cols = instance.first_frame.width() / 2;
    let grid = CellGrid::new(instance.first_frame.height() / 2, cols, Color::White);
    let is_block = |class: Option<Color>| class.is_some_and(|color| color != Color::White);

    let (mut unpaired, mut completed, mut blocks, mut kept, mut added, mut added_right) = (0, 0, 0, 0, 0, 0);
    for cell in grid.cells() {
        let (before, twin_before, now) = (puzzle.get(cell), puzzle.get(mirror(cell, cols)), last.get(cell));
        if is_block(before) {
            blocks += 1;
            kept += usize::from(now == before);
            if twin_before == Some(Color::White) {
                unpaired += 1;
                completed += usize::from(last.get(mirror(cell, cols)) == before);
            }
        } else if now != Some(Color::White) {
            added += 1;
            added_right += usize::from(is_block(now) && now == twin_before);
        }
    }
    Score::weighted(
        &[
            ("completion", 60, share(completed, unpaired, 1.0)),
            ("symmetric_additions", 25, share(added_right, added, 0.0)),
            ("preservation", 15, share(kept, blocks, 1.0)),
        ],
        &[
            ("pattern_completed", completed == unpaired && added > 0),
            ("nothing_else_added", added_right == added),
            ("blocks_kept", kept == blocks),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(seed: u64) -> TaskInstance {
        TaskKind::Symmetry.generate(seed, &TaskKind::Symmetry.default_params()).unwrap()
    }

    /// The puzzle with `changes` applied, as a two-frame video.
    fn edited(instance: &TaskInstance, changes: &[(Cell, Color)]) -> TaskVideo {
        let mut last = instance.first_frame.clone();
        for &(cell, color) in changes {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                last.set_pixel(0, 2 * cell.row + dy, 2 * cell.col + dx, color);
            }
        }
        TaskVideo::concat(&[instance.first_frame.clone(), last]).unwrap()
    }

    #[test]
    fn the_answer_is_the_unique_symmetric_completion() {
        for seed in 0..50 {
            let instance = instance(seed);
            let colors = [Color::White, Color::Blue, Color::Red, Color::Green, Color::Orange];
            let puzzle = CellReading::read(&instance.first_frame, 0, &colors);
            let solved = CellReading::read(&instance.ground_truth, 4, &colors);
            let Answer::Symmetry { missing } = &instance.answer else { panic!("not a symmetry answer") };
            assert!(missing.len() >= MIN_MISSING);
            for cell in CellGrid::new(6, 6, Color::White).cells() {
                let twin = mirror(cell, 6);
                assert_eq!(solved.get(cell), solved.get(twin), "seed {seed}: the answer is symmetric");
                // Each cell of the answer is fixed by the puzzle: its own block or its twin's.
                let forced = if puzzle.is(cell, Color::White) { puzzle.get(twin) } else { puzzle.get(cell) };
                assert_eq!(solved.get(cell), forced);
                assert_eq!(missing.contains(&cell), puzzle.get(cell) != solved.get(cell));
            }
        }
    }

    #[test]
    fn wrong_answers_score_low() {
        for seed in 0..50 {
            let instance = instance(seed);
            let Answer::Symmetry { missing } = &instance.answer else { panic!("not a symmetry answer") };
            let solved = CellReading::read(&instance.ground_truth, 4, &COLORS);
            // The right cells in the wrong colours.
            let recoloured: Vec<(Cell, Color)> = missing
                .iter()
                .map(|&cell| {
                    let right = solved.get(cell).unwrap_or(Color::Blue);
                    (cell, if right == Color::Blue { Color::Red } else { Color::Blue })
                })
                .collect();
            // Symmetric by deleting the unpaired blocks instead.
            let deleted: Vec<(Cell, Color)> =
                missing.iter().map(|&cell| (mirror(cell, 6), Color::White)).collect();
            for (name, changes) in [("recoloured", recoloured), ("deleted", deleted)] {
                let score = instance.score(&edited(&instance, &changes)).unwrap();
                assert!(!score.solved);
                assert!(score.value < 0.3, "seed {seed} {name}: {score:?}");
            }
        }
    }
}
