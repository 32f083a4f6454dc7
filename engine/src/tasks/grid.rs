//! Cells: the 2x2-pixel patches that become one token each under the model's 1x2x2 patching.
//!
//! The block tasks (symmetry, gravity, flood fill) draw each meaningful cell as one flat 2x2
//! patch, so a task of `rows x cols` cells is a `2 rows x 2 cols`-pixel image; scorers read a cell
//! back from the mean of its four pixels, which halves the noise of a model's output.
use super::palette::{Color, classify_within};
use super::video::TaskVideo;

/// A token cell: pixel rows `2 row..2 row + 2`, columns `2 col..2 col + 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub row: usize,
    pub col: usize,
}

impl Cell {
    #[must_use]
    pub const fn new(row: usize, col: usize) -> Self {
        Self { row, col }
    }
}

/// One frame of a block task as colours per cell, `[rows, cols]` row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CellGrid {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    colors: Vec<Color>,
}

impl CellGrid {
    pub(crate) fn new(rows: usize, cols: usize, color: Color) -> Self {
        Self { rows, cols, colors: vec![color; rows * cols] }
    }

    pub(crate) fn get(&self, cell: Cell) -> Color {
        self.colors[cell.row * self.cols + cell.col]
    }

    pub(crate) fn set(&mut self, cell: Cell, color: Color) {
        self.colors[cell.row * self.cols + cell.col] = color;
    }

    /// Every cell, row by row.
    pub(crate) fn cells(&self) -> impl Iterator<Item = Cell> + use<> {
        let cols = self.cols;
        (0..self.rows * self.cols).map(move |idx| Cell::new(idx / cols, idx % cols))
    }

    /// The 4-neighbours of `cell` inside the grid.
    pub(crate) fn neighbours(&self, cell: Cell) -> Vec<Cell> {
        let mut out = Vec::with_capacity(4);
        if cell.row > 0 {
            out.push(Cell::new(cell.row - 1, cell.col));
        }
        if cell.row + 1 < self.rows {
            out.push(Cell::new(cell.row + 1, cell.col));
        }
        if cell.col > 0 {
            out.push(Cell::new(cell.row, cell.col - 1));
        }
        if cell.col + 1 < self.cols {
            out.push(Cell::new(cell.row, cell.col + 1));
        }
        out
    }
}

/// Renders frames of cells as a video `[3, frames.len(), 2 rows, 2 cols]`.
pub(crate) fn render(frames: &[CellGrid]) -> TaskVideo {
    let (rows, cols) = frames.first().map_or((0, 0), |grid| (grid.rows, grid.cols));
    let mut video = TaskVideo::filled(frames.len(), 2 * rows, 2 * cols, Color::White);
    for (frame_idx, grid) in frames.iter().enumerate() {
        for cell in grid.cells() {
            let color = grid.get(cell);
            if color != Color::White {
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    video.set_pixel(frame_idx, 2 * cell.row + dy, 2 * cell.col + dx, color);
                }
            }
        }
    }
    video
}

/// One frame read back as cells, `[rows, cols]` row-major: the candidate colour nearest to the
/// mean of the cell's four pixels, or `None` where none is within tolerance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CellReading {
    pub(crate) cols: usize,
    classes: Vec<Option<Color>>,
}

impl CellReading {
    /// Reads frame `frame_idx` of `video` (whose height and width are even) at the palette's
    /// [`TOLERANCE`](super::TOLERANCE).
    pub(crate) fn read(video: &TaskVideo, frame_idx: usize, candidates: &[Color]) -> Self {
        Self::read_within(video, frame_idx, candidates, super::TOLERANCE)
    }

    /// Reads frame `frame_idx` of `video`, a cell's mean counting as a colour within `tolerance`.
    pub(crate) fn read_within(
        video: &TaskVideo,
        frame_idx: usize,
        candidates: &[Color],
        tolerance: f32,
    ) -> Self {
        let (rows, cols) = (video.height() / 2, video.width() / 2);
        let mut classes = Vec::with_capacity(rows * cols);
        for row in 0..rows {
            for col in 0..cols {
                let mean = cell_mean(video, frame_idx, Cell::new(row, col));
                classes.push(classify_within(mean, candidates, tolerance));
            }
        }
        Self { cols, classes }
    }

    pub(crate) fn get(&self, cell: Cell) -> Option<Color> {
        self.classes[cell.row * self.cols + cell.col]
    }

    /// Whether the cell reads as exactly `color`.
    pub(crate) fn is(&self, cell: Cell, color: Color) -> bool {
        self.get(cell) == Some(color)
    }
}

/// How many of `total` items frame `frame_idx` of `frames` shows when they unfold evenly: none
/// on frame 0, all on the last frame, `ceil(frame_idx * total / (frames - 1))` between.
pub(crate) fn unfold_count(frame_idx: usize, frames: usize, total: usize) -> usize {
    if frames <= 1 {
        return total;
    }
    (frame_idx * total).div_ceil(frames - 1).min(total)
}

/// The mean RGB of `cell`'s 2x2 pixels in frame `frame_idx` of `video`.
pub(crate) fn cell_mean(video: &TaskVideo, frame_idx: usize, cell: Cell) -> [f32; 3] {
    let mut mean = [0.0f32; 3];
    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let rgb = video.pixel(frame_idx, 2 * cell.row + dy, 2 * cell.col + dx);
        for ch in 0..3 {
            mean[ch] += rgb[ch] / 4.0;
        }
    }
    mean
}

/// `hits / total`, or `empty` when there is nothing to count.
pub(crate) fn share(hits: usize, total: usize, empty: f64) -> f64 {
    if total == 0 { empty } else { hits as f64 / total as f64 }
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "the generators paint exact palette values")]
mod tests {
    use super::*;

    #[test]
    fn cells_render_as_2x2_patches_and_read_back() {
        let mut grid = CellGrid::new(2, 3, Color::White);
        grid.set(Cell::new(1, 2), Color::Blue);
        let video = render(&[grid.clone()]);
        assert_eq!(video.shape(), [3, 1, 4, 6]);
        assert_eq!(video.pixel(0, 3, 5), Color::Blue.signed());
        assert_eq!(video.pixel(0, 1, 5), Color::White.signed());
        let reading = CellReading::read(&video, 0, &Color::ALL);
        for cell in grid.cells() {
            assert!(reading.is(cell, grid.get(cell)));
        }
    }

    #[test]
    fn unfolding_starts_empty_and_ends_full() {
        assert_eq!(
            (0..5).map(|frame_idx| unfold_count(frame_idx, 5, 10)).collect::<Vec<_>>(),
            [0, 3, 5, 8, 10]
        );
        assert_eq!(unfold_count(1, 2, 7), 7);
        assert_eq!(unfold_count(3, 5, 2), 2);
    }
}
