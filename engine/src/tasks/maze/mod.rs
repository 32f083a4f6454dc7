//! The maze (VBVR O-39, Spatiality): draw the path from the green start to the red flag.
//!
//! Layout: one pixel per maze unit. An `n x n`-cell maze is a `(2n + 1)`-unit grid (cell `(r, c)`
//! at unit `(2r + 1, 2c + 1)`, walls and posts between), padded with one more black row and
//! column to `2n + 2` pixels, so that the 2x2 patch `(r, c)` holds exactly cell `(r, c)` with its
//! top-left post, top wall and left wall units: one token per cell, `(n + 1)^2` tokens a frame.
//! Colours: white floor, black walls, green start, red flag, orange path (the path covers the
//! cells between start and flag and the openings between consecutive cells; the start and flag
//! keep their colours).
mod score;

pub(crate) use score::score;

use super::error::Result;
use super::grid::{Cell, unfold_count};
use super::palette::Color;
use super::rng::SplitMix64;
use super::video::TaskVideo;
use super::{Answer, TaskInstance, TaskKind, TaskParams};

/// A perfect maze: the passages form a spanning tree of the cells, so any two cells are joined
/// by exactly one path.
#[derive(Debug, Clone)]
pub(crate) struct Maze {
    cells: usize,
    /// `[n, n]`: whether cell `(r, c)` opens onto `(r, c + 1)`.
    open_east: Vec<bool>,
    /// `[n, n]`: whether cell `(r, c)` opens onto `(r + 1, c)`.
    open_south: Vec<bool>,
}

impl Maze {
    /// Carves an `n x n` maze by randomized depth-first search (the recursive backtracker, with
    /// an explicit stack) from a random cell.
    pub(crate) fn carve(cells: usize, rng: &mut SplitMix64) -> Self {
        let mut maze =
            Self { cells, open_east: vec![false; cells * cells], open_south: vec![false; cells * cells] };
        let mut visited = vec![false; cells * cells];
        let first = Cell::new(rng.below(cells), rng.below(cells));
        visited[first.row * cells + first.col] = true;
        let mut stack = vec![first];
        while let Some(&current) = stack.last() {
            let fresh: Vec<Cell> = maze
                .adjacent(current)
                .into_iter()
                .filter(|next| !visited[next.row * cells + next.col])
                .collect();
            if fresh.is_empty() {
                stack.pop();
                continue;
            }
            let next = fresh[rng.below(fresh.len())];
            maze.open(current, next);
            visited[next.row * cells + next.col] = true;
            stack.push(next);
        }
        maze
    }

    /// The grid neighbours of `cell`, walls or not.
    fn adjacent(&self, cell: Cell) -> Vec<Cell> {
        let n = self.cells;
        let mut out = Vec::with_capacity(4);
        if cell.row > 0 {
            out.push(Cell::new(cell.row - 1, cell.col));
        }
        if cell.row + 1 < n {
            out.push(Cell::new(cell.row + 1, cell.col));
        }
        if cell.col > 0 {
            out.push(Cell::new(cell.row, cell.col - 1));
        }
        if cell.col + 1 < n {
            out.push(Cell::new(cell.row, cell.col + 1));
        }
        out
    }

    /// The wall flag between two grid neighbours: `(is east-west, index of the west/north cell)`.
    fn wall_index(&self, a: Cell, b: Cell) -> (bool, usize) {
        let (first, second) = if (a.row, a.col) < (b.row, b.col) { (a, b) } else { (b, a) };
        (first.row == second.row, first.row * self.cells + first.col)
    }

    fn open(&mut self, a: Cell, b: Cell) {
        match self.wall_index(a, b) {
            (true, idx) => self.open_east[idx] = true,
            (false, idx) => self.open_south[idx] = true,
        }
    }

    pub(crate) fn is_open(&self, a: Cell, b: Cell) -> bool {
        match self.wall_index(a, b) {
            (true, idx) => self.open_east[idx],
            (false, idx) => self.open_south[idx],
        }
    }

    /// The cells reachable from `cell` in one move.
    pub(crate) fn moves(&self, cell: Cell) -> Vec<Cell> {
        self.adjacent(cell).into_iter().filter(|&next| self.is_open(cell, next)).collect()
    }

    /// Breadth-first search from `from`: each cell's `(distance, parent)`, row-major.
    fn search(&self, from: Cell) -> Vec<Option<(usize, Cell)>> {
        let n = self.cells;
        let mut reached = vec![None; n * n];
        reached[from.row * n + from.col] = Some((0, from));
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(cell) = queue.pop_front() {
            let distance = reached[cell.row * n + cell.col].map_or(0, |(distance, _)| distance);
            for next in self.moves(cell) {
                if reached[next.row * n + next.col].is_none() {
                    reached[next.row * n + next.col] = Some((distance + 1, cell));
                    queue.push_back(next);
                }
            }
        }
        reached
    }

    /// The path of cells from `from` to `to`, both included.
    pub(crate) fn path(&self, from: Cell, to: Cell) -> Vec<Cell> {
        let reached = self.search(from);
        let mut path = vec![to];
        let mut cell = to;
        while cell != from {
            let Some((_, parent)) = reached[cell.row * self.cells + cell.col] else {
                return Vec::new();
            };
            cell = parent;
            path.push(cell);
        }
        path.reverse();
        path
    }

    /// The puzzle frame: `[3, 1, 2n + 2, 2n + 2]`, walls black, floor white.
    fn floor_plan(&self) -> TaskVideo {
        let size = 2 * self.cells + 2;
        let mut frame = TaskVideo::filled(1, size, size, Color::Black);
        for row in 0..self.cells {
            for col in 0..self.cells {
                let cell = Cell::new(row, col);
                let (y, x) = unit_of(cell);
                frame.set_pixel(0, y, x, Color::White);
                for next in self.moves(cell) {
                    let (passage_y, passage_x) = passage_between(cell, next);
                    frame.set_pixel(0, passage_y, passage_x, Color::White);
                }
            }
        }
        frame
    }
}

/// The pixel `(y, x)` of a cell's interior.
pub(crate) const fn unit_of(cell: Cell) -> (usize, usize) {
    (2 * cell.row + 1, 2 * cell.col + 1)
}

/// The pixel of the opening between two neighbouring cells.
fn passage_between(a: Cell, b: Cell) -> (usize, usize) {
    let ((ay, ax), (by, bx)) = (unit_of(a), unit_of(b));
    (usize::midpoint(ay, by), usize::midpoint(ax, bx))
}

/// The pixels of a path of cells: each cell's interior and the openings between, in order.
pub(crate) fn path_units(path: &[Cell]) -> Vec<(usize, usize)> {
    let mut units = Vec::with_capacity(2 * path.len());
    for (idx, &cell) in path.iter().enumerate() {
        if idx > 0 {
            units.push(passage_between(path[idx - 1], cell));
        }
        units.push(unit_of(cell));
    }
    units
}

const PROMPT: &str = "The image shows a maze: white corridors between black walls, a green start and a red flag. \
Draw the route from the green start to the red flag in orange, step by step, without crossing any black wall.";

/// A maze of `params.size` cells a side; start and flag at least `min(n, longest)` moves apart,
/// where `longest` is the farthest any cell lies from the start.
pub(crate) fn generate(seed: u64, params: &TaskParams) -> Result<TaskInstance> {
    let n = params.size;
    let mut rng = SplitMix64::new(seed);
    let maze = Maze::carve(n, &mut rng);
    let start = Cell::new(rng.below(n), rng.below(n));
    let reached = maze.search(start);
    let distance = |cell: &Cell| reached[cell.row * n + cell.col].map_or(0, |(distance, _)| distance);
    let all_cells: Vec<Cell> = (0..n * n).map(|idx| Cell::new(idx / n, idx % n)).collect();
    let longest = all_cells.iter().map(distance).max().unwrap_or(0);
    let far_enough: Vec<Cell> =
        all_cells.into_iter().filter(|cell| distance(cell) >= longest.min(n)).collect();
    let flag = far_enough[rng.below(far_enough.len())];
    let path = maze.path(start, flag);

    let mut puzzle = maze.floor_plan();
    let ((start_y, start_x), (flag_y, flag_x)) = (unit_of(start), unit_of(flag));
    puzzle.set_pixel(0, start_y, start_x, Color::Green);
    puzzle.set_pixel(0, flag_y, flag_x, Color::Red);

    let units = path_units(&path);
    let orange = &units[1..units.len() - 1];
    let mut frames = Vec::with_capacity(params.frames);
    for frame_idx in 0..params.frames {
        let mut frame = puzzle.clone();
        for &(y, x) in &orange[..unfold_count(frame_idx, params.frames, orange.len())] {
            frame.set_pixel(0, y, x, Color::Orange);
        }
        frames.push(frame);
    }
    Ok(TaskInstance {
        kind: TaskKind::Maze,
        seed,
        params: *params,
        prompt: PROMPT.to_owned(),
        first_frame: puzzle,
        ground_truth: TaskVideo::concat(&frames)?,
        answer: Answer::Maze { path },
    })
}

#[cfg(test)]
mod tests;
