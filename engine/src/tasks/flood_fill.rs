//! Flood fill (Perception): fill the walled region that holds the blue marker.
//!
//! The puzzle is a `size x size` white grid with scattered black wall cells and one blue marker
//! cell; the answer paints blue every white cell 4-connected to the marker, and nothing else.
//! The marker's region holds at least 3 cells and leaves at least 3 white cells outside it. The
//! ground truth spreads the fill outwards from the marker in breadth-first order.
//!
//! Scorer, in the spirit of VBVR's region tasks (a region read off the first frame, judged on the
//! last); the region is found on the puzzle's pixels, so it needs no ground truth:
//! - `filled` (50%): the region's cells (marker aside) painted blue.
//! - `contained` (30%): cells white in the puzzle and changed since that lie in the region and
//!   are blue (0 with no change): no leak through a wall.
//! - `walls_kept` (20%): wall cells still black.
//!
//! Solved: all three parts full.
use std::collections::VecDeque;

use super::grid::{Cell, CellGrid, CellReading, render, share, unfold_count};
use super::palette::Color;
use super::rng::SplitMix64;
use super::video::TaskVideo;
use super::{Answer, Score, TaskInstance, TaskKind, TaskParams};

/// The chance, in percent, that a cell is a wall.
const WALL_PERCENT: usize = 30;
/// Tries at a random scene before falling back to a fixed one.
const TRIES: usize = 100;
/// At least this many cells in the region, and this many white cells outside it.
const MIN_CELLS: usize = 3;

const COLORS: [Color; 3] = [Color::White, Color::Black, Color::Blue];

const PROMPT: &str = "The image shows a white grid divided by black walls, with one blue marker. Fill the \
white region that holds the blue marker with blue, spreading out from the marker and stopping at the black walls.";

/// The cells 4-connected to `seeds` through cells for which `passable` holds, in breadth-first
/// order from the seeds (which come first).
fn region(grid: &CellGrid, seeds: &[Cell], passable: impl Fn(Cell) -> bool) -> Vec<Cell> {
    let mut seen = vec![false; grid.rows * grid.cols];
    let mut order = Vec::new();
    let mut queue = VecDeque::new();
    for &seed in seeds {
        seen[seed.row * grid.cols + seed.col] = true;
        queue.push_back(seed);
    }
    while let Some(cell) = queue.pop_front() {
        order.push(cell);
        for next in grid.neighbours(cell) {
            if !seen[next.row * grid.cols + next.col] && passable(next) {
                seen[next.row * grid.cols + next.col] = true;
                queue.push_back(next);
            }
        }
    }
    order
}

/// A scene with walls and a marker whose region fits the bounds, or `None`.
fn random_scene(size: usize, rng: &mut SplitMix64) -> Option<(CellGrid, Vec<Cell>)> {
    let mut scene = CellGrid::new(size, size, Color::White);
    for cell in scene.cells().collect::<Vec<_>>() {
        if rng.chance(WALL_PERCENT) {
            scene.set(cell, Color::Black);
        }
    }
    let white: Vec<Cell> = scene.cells().filter(|&cell| scene.get(cell) == Color::White).collect();
    let marker = *white.get(rng.below(white.len()))?;
    let filled = region(&scene, &[marker], |cell| scene.get(cell) == Color::White);
    let fits = filled.len() >= MIN_CELLS && white.len() >= filled.len() + MIN_CELLS;
    fits.then(|| {
        scene.set(marker, Color::Blue);
        (scene, filled)
    })
}

pub(crate) fn generate(seed: u64, params: &TaskParams) -> TaskInstance {
    let size = params.size;
    let mut rng = SplitMix64::new(seed);
    let found = (0..TRIES).find_map(|_| random_scene(size, &mut rng));
    let (puzzle, filled) = found.unwrap_or_else(|| {
        // Never reached in practice: a wall down the middle, the marker top left.
        let mut scene = CellGrid::new(size, size, Color::White);
        for row in 0..size {
            scene.set(Cell::new(row, size / 2), Color::Black);
        }
        let filled = region(&scene, &[Cell::new(0, 0)], |cell| scene.get(cell) == Color::White);
        scene.set(Cell::new(0, 0), Color::Blue);
        (scene, filled)
    });
    let to_fill = &filled[1..];
    let frames: Vec<CellGrid> = (0..params.frames)
        .map(|frame_idx| {
            let mut frame = puzzle.clone();
            for &cell in &to_fill[..unfold_count(frame_idx, params.frames, to_fill.len())] {
                frame.set(cell, Color::Blue);
            }
            frame
        })
        .collect();
    let ground_truth = render(&frames);
    TaskInstance {
        kind: TaskKind::FloodFill,
        seed,
        params: *params,
        prompt: PROMPT.to_owned(),
        first_frame: ground_truth.repeat_frame(0, 1),
        ground_truth,
        answer: Answer::FloodFill { region: filled },
    }
}

/// Scores the last frame of `video` (see the module docs).
pub(crate) fn score(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> Score {
    let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
    let last = CellReading::read_within(video, video.frames() - 1, &COLORS, tolerance);
    let grid =
        CellGrid::new(instance.first_frame.height() / 2, instance.first_frame.width() / 2, Color::White);
    let markers: Vec<Cell> = grid.cells().filter(|&cell| puzzle.is(cell, Color::Blue)).collect();
    let mut in_region = vec![false; grid.rows * grid.cols];
    for cell in region(&grid, &markers, |cell| puzzle.is(cell, Color::White)) {
        in_region[cell.row * grid.cols + cell.col] = true;
    }

    let (mut to_fill, mut filled, mut changed, mut changed_right, mut walls, mut walls_kept) =
        (0, 0, 0, 0, 0, 0);
    let markers_kept = markers.iter().all(|&cell| last.is(cell, Color::Blue));
    for cell in grid.cells() {
        let inside = in_region[cell.row * grid.cols + cell.col];
        let now_blue = last.is(cell, Color::Blue);
        match puzzle.get(cell) {
            Some(Color::White) => {
                to_fill += usize::from(inside);
                filled += usize::from(inside && now_blue);
                if !last.is(cell, Color::White) {
                    changed += 1;
                    changed_right += usize::from(inside && now_blue);
                }
            }
            Some(Color::Black) => {
                walls += 1;
                walls_kept += usize::from(last.is(cell, Color::Black));
            }
            _ => {}
        }
    }
    Score::weighted(
        &[
            ("filled", 50, share(filled, to_fill, 1.0)),
            ("contained", 30, share(changed_right, changed, 0.0)),
            ("walls_kept", 20, share(walls_kept, walls, 1.0)),
        ],
        &[
            ("region_filled", filled == to_fill && changed > 0),
            ("nothing_else_filled", changed_right == changed),
            ("walls_and_marker_kept", walls_kept == walls && markers_kept),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(seed: u64, size: usize) -> TaskInstance {
        TaskKind::FloodFill.generate(seed, &TaskParams { size, frames: 5 }).unwrap()
    }

    /// The puzzle with the cells for which `paint` holds painted blue, as a two-frame video.
    fn painted(instance: &TaskInstance, paint: impl Fn(Cell) -> bool) -> TaskVideo {
        let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
        let (rows, cols) = instance.token_grid();
        let mut last = CellGrid::new(rows, cols, Color::White);
        for cell in last.cells().collect::<Vec<_>>() {
            let now = puzzle.get(cell).unwrap_or(Color::White);
            last.set(cell, if now == Color::White && paint(cell) { Color::Blue } else { now });
        }
        TaskVideo::concat(&[instance.first_frame.clone(), render(&[last])]).unwrap()
    }

    #[test]
    fn the_region_is_walled_in_and_leaves_white_outside() {
        for size in [4, 6, 8] {
            for seed in 0..50 {
                let instance = instance(seed, size);
                let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
                let Answer::FloodFill { region } = &instance.answer else { panic!("not a flood answer") };
                assert!(region.len() >= MIN_CELLS);
                assert!(puzzle.is(region[0], Color::Blue));
                let grid = CellGrid::new(size, size, Color::White);
                for &cell in region {
                    for next in grid.neighbours(cell) {
                        assert!(
                            region.contains(&next) || puzzle.is(next, Color::Black),
                            "seed {seed}: leak at {next:?}"
                        );
                    }
                }
                let outside = grid
                    .cells()
                    .filter(|cell| puzzle.is(*cell, Color::White) && !region.contains(cell))
                    .count();
                assert!(outside >= MIN_CELLS, "seed {seed}");
            }
        }
    }

    #[test]
    fn filling_the_wrong_cells_scores_low() {
        for seed in 0..50 {
            let instance = instance(seed, 6);
            let Answer::FloodFill { region } = &instance.answer else { panic!("not a flood answer") };
            let wrong = instance.score(&painted(&instance, |cell| !region.contains(&cell))).unwrap();
            assert!(!wrong.solved);
            assert!(wrong.value < 0.3, "seed {seed}: {wrong:?}");
            let everything = instance.score(&painted(&instance, |_| true)).unwrap();
            assert!(!everything.solved && everything.value < 1.0, "seed {seed}: {everything:?}");
            assert!(instance.score(&painted(&instance, |cell| region.contains(&cell))).unwrap().solved);
        }
    }
}
