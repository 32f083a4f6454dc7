//! Where the frames of a video go in the frame view: a grid that wraps to the view's width, at
//! any zoom (points per tensor pixel, below 1 as well as above), and the zoom that fits the
//! whole video in a view. Pure layout maths, so it is tested without a window.

use egui::{Pos2, Rect, Vec2};

/// Screen points per tensor pixel the zoom allows: 1/64 shows a 832-pixel-wide decoded frame
/// in 13 points, 64 shows a latent pixel as a large square.
pub const ZOOM_RANGE: std::ops::RangeInclusive<f32> = (1.0 / 64.0)..=64.0;

/// Gap between frames, in points.
pub const FRAME_GAP: f32 = 8.0;

/// The frames of a `[C, F, H, W]` video laid out in rows of `columns` cells, each a label above
/// an image of `image_size` points. Cells are numbered row by row from the top left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameGrid {
    pub num_frames: usize,
    pub columns: usize,
    /// One frame's image, in points.
    pub image_size: Vec2,
    /// The label row above each image, in points.
    pub label_height: f32,
}

impl FrameGrid {
    /// `num_frames` frames of `[height, width]` tensor pixels at `zoom` points per pixel, in as
    /// many columns as fit in `available_width` points (at least one; no more than the frames).
    #[must_use]
    pub fn new(
        num_frames: usize,
        [height, width]: [usize; 2],
        zoom: f32,
        available_width: f32,
        label_height: f32,
    ) -> Self {
        let image_size = Vec2::new(width as f32, height as f32) * zoom;
        let fitting = ((available_width + FRAME_GAP) / (image_size.x + FRAME_GAP)).floor();
        let columns = if fitting.is_finite() && fitting >= 1.0 { fitting as usize } else { 1 };
        Self { num_frames, columns: columns.clamp(1, num_frames.max(1)), image_size, label_height }
    }

    #[must_use]
    pub fn rows(&self) -> usize {
        self.num_frames.div_ceil(self.columns)
    }

    /// One cell (label and image), in points.
    #[must_use]
    pub fn cell_size(&self) -> Vec2 {
        self.image_size + Vec2::new(0.0, self.label_height)
    }

    /// The whole grid, in points.
    #[must_use]
    pub fn content_size(&self) -> Vec2 {
        let [columns, rows] = [self.columns, self.rows()].map(|n| n as f32);
        let cell = self.cell_size();
        Vec2::new(
            columns * cell.x + (columns - 1.0).max(0.0) * FRAME_GAP,
            rows * cell.y + (rows - 1.0).max(0.0) * FRAME_GAP,
        )
    }

    /// Frame `frame_idx`'s cell (label and image) in a grid whose top left is at `origin`.
    #[must_use]
    pub fn cell_rect(&self, origin: Pos2, frame_idx: usize) -> Rect {
        let (row, column) = (frame_idx / self.columns, frame_idx % self.columns);
        let step = self.cell_size() + Vec2::splat(FRAME_GAP);
        Rect::from_min_size(origin + Vec2::new(column as f32 * step.x, row as f32 * step.y), self.cell_size())
    }

    /// The frames whose cells meet `visible` (both in the coordinates of `origin`), in order.
    pub fn visible_frames(&self, origin: Pos2, visible: Rect) -> impl Iterator<Item = usize> + '_ {
        (0..self.num_frames).filter(move |&frame_idx| self.cell_rect(origin, frame_idx).intersects(visible))
    }
}

/// The largest zoom at which every one of `num_frames` frames of `[height, width]` tensor
/// pixels fits in `available` points, over every choice of columns. Zooms of 1 and more are
/// whole numbers (each tensor pixel the same number of points); smaller ones are kept as they
/// are. Clamped to [`ZOOM_RANGE`].
#[must_use]
pub fn fit_zoom(available: Vec2, num_frames: usize, [height, width]: [usize; 2], label_height: f32) -> f32 {
    let num_frames = num_frames.max(1);
    let [height, width] = [height, width].map(|n| n.max(1) as f32);
    let best = (1..=num_frames)
        .map(|columns| {
            let rows = num_frames.div_ceil(columns) as f32;
            let columns = columns as f32;
            let across = (available.x - FRAME_GAP * (columns - 1.0)) / (columns * width);
            let down = (available.y - FRAME_GAP * (rows - 1.0) - label_height * rows) / (rows * height);
            across.min(down)
        })
        .fold(f32::NEG_INFINITY, f32::max);
    let zoom = if best >= 1.0 { best.floor() } else { best };
    if zoom.is_finite() { zoom.clamp(*ZOOM_RANGE.start(), *ZOOM_RANGE.end()) } else { *ZOOM_RANGE.start() }
}

/// The zoom after a step of `factor` (e.g. a Ctrl + scroll's zoom delta), clamped to
/// [`ZOOM_RANGE`], and the scroll offset that keeps the content point under `anchor` (in
/// viewport coordinates, the pointer) where it is.
#[must_use]
pub fn zoom_about(zoom: f32, factor: f32, offset: Vec2, anchor: Vec2) -> (f32, Vec2) {
    let new_zoom = (zoom * factor).clamp(*ZOOM_RANGE.start(), *ZOOM_RANGE.end());
    let ratio = new_zoom / zoom;
    let new_offset = (offset + anchor) * ratio - anchor;
    (new_zoom, new_offset.max(Vec2::ZERO))
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "sizes of small integers times powers of two are exact")]
mod tests {
    use super::*;

    #[test]
    fn frames_wrap_into_as_many_columns_as_fit() {
        // 17 frames of 64 x 64 at 2 pt/px (128 pt each) in 1000 pt: 7 columns (7 * 128 + 6 * 8 = 944).
        let grid = FrameGrid::new(17, [64, 64], 2.0, 1000.0, 16.0);
        assert_eq!((grid.columns, grid.rows()), (7, 3));
        assert!(grid.content_size().x <= 1000.0);
        assert_eq!(grid.cell_rect(Pos2::ZERO, 8).min, Pos2::new(136.0, 152.0), "row 1, column 1");
        // Too narrow for one frame: still one column; never more columns than frames.
        assert_eq!(FrameGrid::new(5, [64, 64], 2.0, 10.0, 16.0).columns, 1);
        assert_eq!(FrameGrid::new(2, [4, 4], 1.0, 1000.0, 16.0).columns, 2);
    }

    #[test]
    fn only_frames_in_view_are_visible() {
        // 81 frames of 480 x 832 at 1/8 pt/px: 104 x 60 pt images, 76 pt cells with labels.
        let grid = FrameGrid::new(81, [480, 832], 0.125, 1000.0, 16.0);
        assert_eq!(grid.columns, 9, "9 * 104 + 8 * 8 = 1000");
        let view = Rect::from_min_size(Pos2::new(0.0, 0.0), Vec2::new(1000.0, 150.0));
        let visible: Vec<usize> = grid.visible_frames(Pos2::ZERO, view).collect();
        assert_eq!(visible, (0..18).collect::<Vec<_>>(), "the first two rows (0-76 and 84-160 pt)");
    }

    #[test]
    fn fit_zoom_fits_the_whole_video_in_a_grid() {
        // A real Wan decoded video: 81 frames of 480 x 832 in a 1000 x 700 pt view.
        let zoom = fit_zoom(Vec2::new(1000.0, 700.0), 81, [480, 832], 16.0);
        assert!(zoom < 1.0, "zoom {zoom}");
        let grid = FrameGrid::new(81, [480, 832], zoom, 1000.0, 16.0);
        let size = grid.content_size();
        assert!(size.x <= 1000.0 && size.y <= 700.0 + 1e-3, "{size:?} at zoom {zoom}");
        // A zoom a tenth larger would not fit.
        let bigger = FrameGrid::new(81, [480, 832], zoom * 1.1, 1000.0, 16.0);
        assert!(bigger.content_size().y > 700.0, "fit is not the largest zoom");
        // Three small frames in a square view: two rows of two give 47.5 pt/px (one row only
        // 32.7), rounded down to whole points per pixel.
        let zoom = fit_zoom(Vec2::new(800.0, 800.0), 3, [8, 8], 16.0);
        assert_eq!(zoom, 47.0);
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let (zoom, offset) = zoom_about(2.0, 2.0, Vec2::new(100.0, 50.0), Vec2::new(20.0, 10.0));
        assert_eq!(zoom, 4.0);
        // Content point (120, 60) at zoom 2 is (240, 120) at zoom 4; minus the anchor (20, 10).
        assert_eq!(offset, Vec2::new(220.0, 110.0));
        let (zoom, _) = zoom_about(64.0, 2.0, Vec2::ZERO, Vec2::ZERO);
        assert_eq!(zoom, 64.0, "clamped");
    }
}
