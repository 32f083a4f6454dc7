//! Falling blocks (Knowledge, after VBVR's gravity physics, O-62): every coloured block falls
//! straight down until it rests on the ground, a black ledge or another block.
//!
//! The puzzle is a `size x size` grid: a black ground row at the bottom, a few short black
//! ledges, and coloured blocks hanging in the air. Physics in ticks: each tick every block with
//! free space below it moves down one cell (a stack falls together), until none can; the answer
//! is the resting state, unique by construction, and at least two blocks move. The ground truth
//! samples the ticks evenly over its frames.
//!
//! Scorer, after VBVR's `GravityPhysicsEvaluator` (physics accuracy 0.50, final position 0.30,
//! motion quality 0.15, visual preservation 0.05); a single-frame answer has no trajectory to
//! fit, so the parts here judge where the blocks end up:
//! - `landed` (50%): cells where a block comes to rest (and none was before) showing its colour.
//! - `vacated` (25%): cells a block leaves that are white again.
//! - `supported` (15%): blocks in the last frame lying on the ground, a ledge or a block (the
//!   rule alone; 0 with no block).
//! - `scene_preserved` (10%): the ground and ledges still black.
//!
//! `landed` and `vacated` read the ground truth's last frame, as VBVR reads its final frame.
//! Solved: every cell of the last frame reads as in the ground truth's last frame.
use super::grid::{Cell, CellGrid, CellReading, cell_mean, render, share, unfold_count};
use super::palette::Color;
use super::rng::SplitMix64;
use super::video::TaskVideo;
use super::{Answer, Score, TaskInstance, TaskKind, TaskParams};

/// Tries at a random scene before falling back to a fixed one.
const TRIES: usize = 100;
/// At least this many blocks must move.
const MIN_FALLING: usize = 2;

const COLORS: [Color; 6] = [Color::White, Color::Black, Color::Blue, Color::Red, Color::Green, Color::Orange];

const PROMPT: &str = "The image shows coloured blocks above black ground and ledges. Gravity pulls every block \
straight down until it rests on the ground, a ledge or another block. Show the blocks falling and where they come to rest.";

fn is_block(color: Color) -> bool {
    !matches!(color, Color::White | Color::Black)
}

/// Runs the physics from `scene`: every state, one a tick, the first being `scene`.
fn fall(scene: &CellGrid) -> Vec<CellGrid> {
    let mut states = vec![scene.clone()];
    loop {
        let mut next = states[states.len() - 1].clone();
        let mut moved = false;
        // Bottom-up, so that a block moves into the space its lower neighbour just left.
        for row in (0..next.rows - 1).rev() {
            for col in 0..next.cols {
                let (cell, below) = (Cell::new(row, col), Cell::new(row + 1, col));
                if is_block(next.get(cell)) && next.get(below) == Color::White {
                    next.set(below, next.get(cell));
                    next.set(cell, Color::White);
                    moved = true;
                }
            }
        }
        if !moved {
            return states;
        }
        states.push(next);
    }
}

/// An empty scene: white, with the black ground as its bottom row.
fn ground(size: usize) -> CellGrid {
    let mut scene = CellGrid::new(size, size, Color::White);
    for col in 0..size {
        scene.set(Cell::new(size - 1, col), Color::Black);
    }
    scene
}

/// A random scene: ground, ledges, blocks.
fn random_scene(size: usize, rng: &mut SplitMix64) -> CellGrid {
    let mut scene = ground(size);
    for _ in 0..rng.range(1, size / 3) {
        let (row, col, length) = (rng.range(2, size - 3), rng.below(size - 1), rng.range(1, 2));
        for dx in 0..length {
            scene.set(Cell::new(row, col + dx), Color::Black);
        }
    }
    for _ in 0..rng.range(size / 2 + 1, size) {
        let cell = Cell::new(rng.below(size - 2), rng.below(size));
        if scene.get(cell) == Color::White {
            scene.set(cell, Color::BLOCKS[rng.below(Color::BLOCKS.len())]);
        }
    }
    scene
}

/// How many blocks of `first` are gone from their cell in `last`.
fn blocks_moved(first: &CellGrid, last: &CellGrid) -> usize {
    first.cells().filter(|&cell| is_block(first.get(cell)) && last.get(cell) != first.get(cell)).count()
}

pub(crate) fn generate(seed: u64, params: &TaskParams) -> TaskInstance {
    let size = params.size;
    let mut rng = SplitMix64::new(seed);
    let mut states = Vec::new();
    for _ in 0..TRIES {
        let candidate = fall(&random_scene(size, &mut rng));
        if blocks_moved(&candidate[0], &candidate[candidate.len() - 1]) >= MIN_FALLING {
            states = candidate;
            break;
        }
    }
    if states.is_empty() {
        // Never reached in practice: two blocks at the top corners, over nothing but the ground.
        let mut scene = ground(size);
        scene.set(Cell::new(0, 0), Color::Blue);
        scene.set(Cell::new(0, size - 1), Color::Red);
        states = fall(&scene);
    }
    let ticks = states.len() - 1;
    let frames: Vec<CellGrid> = (0..params.frames)
        .map(|frame_idx| states[unfold_count(frame_idx, params.frames, ticks)].clone())
        .collect();
    let resting = states[ticks].cells().filter(|&cell| is_block(states[ticks].get(cell))).collect();
    let ground_truth = render(&frames);
    TaskInstance {
        kind: TaskKind::Gravity,
        seed,
        params: *params,
        prompt: PROMPT.to_owned(),
        first_frame: ground_truth.repeat_frame(0, 1),
        ground_truth,
        answer: Answer::Gravity { resting, ticks },
    }
}

/// Scores the last frame of `video` (see the module docs).
pub(crate) fn score(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> Score {
    let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
    let answer = CellReading::read(&instance.ground_truth, instance.ground_truth.frames() - 1, &COLORS);
    let last = CellReading::read_within(video, video.frames() - 1, &COLORS, tolerance);
    let (rows, cols) = (instance.first_frame.height() / 2, instance.first_frame.width() / 2);
    let block_at = |reading: &CellReading, cell: Cell| reading.get(cell).is_some_and(is_block);

    let (mut to_land, mut landed, mut to_vacate, mut vacated) = (0, 0, 0, 0);
    let (mut blocks, mut supported, mut scene, mut scene_kept, mut exact) = (0, 0, 0, 0, 0);
    for cell in CellGrid::new(rows, cols, Color::White).cells() {
        let (before, after, now) = (puzzle.get(cell), answer.get(cell), last.get(cell));
        if block_at(&answer, cell) && before != after {
            to_land += 1;
            landed += usize::from(now == after);
        }
        if block_at(&puzzle, cell) && after == Some(Color::White) {
            to_vacate += 1;
            vacated += usize::from(now == after);
        }
        if block_at(&last, cell) {
            blocks += 1;
            let below = Cell::new(cell.row + 1, cell.col);
            supported += usize::from(
                cell.row + 1 == rows || last.get(below).is_some_and(|color| color != Color::White),
            );
        }
        if before == Some(Color::Black) {
            scene += 1;
            scene_kept += usize::from(now == before);
        }
        exact += usize::from(now == after);
    }
    Score::weighted(
        &[
            ("landed", 50, share(landed, to_land, 1.0)),
            ("vacated", 25, share(vacated, to_vacate, 1.0)),
            ("supported", 15, share(supported, blocks, 0.0)),
            ("scene_preserved", 10, share(scene_kept, scene, 1.0)),
        ],
        &[("answer_exact", exact == rows * cols)],
    )
}

/// Whether the frames between the puzzle and the last frame show the blocks only falling: in
/// each intermediate frame (cell means, within `tolerance`) the ground and ledges stay black,
/// every other cell is white, a block colour its column holds in the puzzle, or a blend of white
/// and one of those, and the topmost block of each column (a cell at least halfway to a block
/// colour) never rises from one frame to the next.
pub(crate) fn frames_fall(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> bool {
    let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
    let (rows, cols) = (instance.first_frame.height() / 2, instance.first_frame.width() / 2);
    let white = Color::White.signed();
    for col in 0..cols {
        let column_cells = || (0..rows).map(move |row| Cell::new(row, col));
        let mut colours: Vec<Color> =
            column_cells().filter_map(|cell| puzzle.get(cell)).filter(|&c| is_block(c)).collect();
        colours.dedup();
        let mut top = column_cells().position(|cell| puzzle.get(cell).is_some_and(is_block)).unwrap_or(rows);
        for frame_idx in 1..video.frames().saturating_sub(1) {
            let mut frame_top = rows;
            for cell in column_cells() {
                let mean = cell_mean(video, frame_idx, cell);
                if puzzle.get(cell) == Some(Color::Black) {
                    if super::progress::on_segment(mean, Color::Black.signed(), Color::Black.signed()).1
                        > tolerance
                    {
                        return false;
                    }
                    continue;
                }
                let nearest = std::iter::once((0.0, super::progress::on_segment(mean, white, white).1))
                    .chain(colours.iter().map(|color| {
                        let (along, distance, _) = super::progress::on_segment(mean, white, color.signed());
                        (along, distance)
                    }))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .expect("white is always a candidate");
                if nearest.1 > tolerance {
                    return false;
                }
                if nearest.0 >= 0.5 && frame_top == rows {
                    frame_top = cell.row;
                }
            }
            if frame_top < top {
                return false;
            }
            top = frame_top;
        }
    }
    true
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "the generators paint exact palette values")]
mod tests {
    use super::*;

    fn instance(seed: u64, size: usize) -> TaskInstance {
        TaskKind::Gravity.generate(seed, &TaskParams { size, frames: 5 }).unwrap()
    }

    /// Top-to-bottom colours of column `col` that are not white.
    fn column(reading: &CellReading, rows: usize, col: usize) -> Vec<Option<Color>> {
        (0..rows)
            .map(|row| reading.get(Cell::new(row, col)))
            .filter(|&class| class != Some(Color::White))
            .collect()
    }

    #[test]
    fn blocks_come_to_rest_supported_in_their_columns_and_order() {
        for size in [4, 6, 8] {
            for seed in 0..50 {
                let instance = instance(seed, size);
                let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
                let solved = CellReading::read(&instance.ground_truth, 4, &COLORS);
                let Answer::Gravity { resting, ticks } = &instance.answer else {
                    panic!("not a gravity answer")
                };
                assert!(*ticks >= 1);
                for col in 0..size {
                    assert_eq!(
                        column(&puzzle, size, col),
                        column(&solved, size, col),
                        "seed {seed} column {col}"
                    );
                }
                for cell in resting {
                    let below = solved.get(Cell::new(cell.row + 1, cell.col));
                    assert!(below.is_some_and(|color| color != Color::White), "seed {seed}: {cell:?} floats");
                }
                let moved = resting.iter().filter(|&&cell| puzzle.get(cell) != solved.get(cell)).count();
                assert!(moved >= 1, "seed {seed}");
                assert_eq!(
                    instance.score(&instance.ground_truth.repeat_frame(4, 1)).unwrap().parts[2].1,
                    1.0
                );
            }
        }
    }

    #[test]
    fn blocks_rising_instead_score_low() {
        for seed in 0..50 {
            let instance = instance(seed, 6);
            // Anti-gravity: run the physics on the scene turned upside down, then turn it back.
            let flip = |grid: &CellGrid| {
                let mut flipped = grid.clone();
                for cell in grid.cells() {
                    flipped.set(Cell::new(grid.rows - 1 - cell.row, cell.col), grid.get(cell));
                }
                flipped
            };
            let puzzle = CellReading::read(&instance.first_frame, 0, &COLORS);
            let mut scene = CellGrid::new(6, 6, Color::White);
            for cell in scene.cells().collect::<Vec<_>>() {
                scene.set(cell, puzzle.get(cell).unwrap_or(Color::White));
            }
            let risen = flip(&fall(&flip(&scene)).pop().unwrap());
            let video = TaskVideo::concat(&[instance.first_frame.clone(), render(&[risen])]).unwrap();
            let score = instance.score(&video).unwrap();
            assert!(!score.solved);
            assert!(score.value < 0.5, "seed {seed}: {score:?}");
        }
    }
}
