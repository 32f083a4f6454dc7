//! The maze scorer: VBVR-Bench's four parts and weights (`MazePathfindingEvaluator`, O-39), on
//! colour masks of single pixels.
//!
//! VBVR reads the walls, start and flag from the first frame and the orange path from the last,
//! and scores path validity 0.45, path completeness 0.30, navigation (one connected path) 0.20,
//! element preservation (walls unchanged) 0.05, each part in coarse steps. Here each part is a
//! continuous share, and "valid" is sharpened from "off the walls" to "on the route": in a
//! perfect maze the only wall-free way from start to flag is the route, so orange anywhere else
//! either crosses a wall or strays into a dead end.
//!
//! - `path_validity` (45%): orange pixels on the route / all orange pixels (0 with no orange),
//!   times VBVR's own penalty for crossing walls: 1 while under 5% of the orange lies on the
//!   puzzle's walls, 0.7 under 10%, 0.3 beyond.
//! - `path_completeness` (30%): route pixels painted orange / route pixels.
//! - `continuity` (20%): `1 / k` for `k` 4-connected pieces of orange, start and flag together
//!   (0 with no orange); a drawn route joins all three into one piece.
//! - `wall_preservation` (5%): puzzle wall pixels still black / puzzle wall pixels.
//!
//! Like VBVR's symmetry scorer, which stops early when the blocks are gone, a frame that kept
//! under half the puzzle's walls is no longer read as this maze: its other parts count 0 (this
//! keeps noise, which finds orange pixels by chance, from passing as a path).
//!
//! The route is found on the puzzle's pixels (breadth-first over non-black pixels from the green
//! one to the red one) and excludes the start and flag pixels. Solved takes four checks:
//! `route_drawn` (orange exactly on the route), `start_and_flag_kept`, `nothing_else_changed`
//! (every pixel off the route reads as its puzzle colour) and `route_grows_from_start` (in each
//! frame between the first and the last, the pixels at least halfway to their answer colour join
//! the green start in one piece), all at the scorer's colour tolerance; the task-wide
//! `frames_unfold` check is added by [`TaskInstance::score_within`].
use std::collections::VecDeque;

use crate::tasks::grid::share;
use crate::tasks::palette::{Color, classify_within};
use crate::tasks::progress::on_segment;
use crate::tasks::video::TaskVideo;
use crate::tasks::{Score, TaskInstance};

/// Below this share of walls kept, the frame is not read as the maze.
const MIN_WALLS_KEPT: f64 = 0.5;

const COLORS: [Color; 5] = [Color::White, Color::Black, Color::Green, Color::Red, Color::Orange];

/// One frame's pixels as palette classes, `[H, W]` row-major.
struct PixelClasses {
    height: usize,
    width: usize,
    classes: Vec<Option<Color>>,
}

impl PixelClasses {
    fn read(video: &TaskVideo, frame_idx: usize, tolerance: f32) -> Self {
        let (height, width) = (video.height(), video.width());
        let classes = (0..height * width)
            .map(|idx| classify_within(video.pixel(frame_idx, idx / width, idx % width), &COLORS, tolerance))
            .collect();
        Self { height, width, classes }
    }

    fn mask(&self, color: Color) -> Vec<bool> {
        self.classes.iter().map(|&class| class == Some(color)).collect()
    }

    /// The 4-neighbours of pixel index `idx`.
    fn neighbours(&self, idx: usize) -> impl Iterator<Item = usize> + use<> {
        let (width, height) = (self.width, self.height);
        let (y, x) = (idx / width, idx % width);
        [
            (y > 0).then(|| idx - width),
            (y + 1 < height).then_some(idx + width),
            (x > 0).then(|| idx - 1),
            (x + 1 < width).then_some(idx + 1),
        ]
        .into_iter()
        .flatten()
    }
}

/// The pixels strictly between the green and the red pixel along the puzzle's corridors.
fn route(puzzle: &PixelClasses) -> Vec<bool> {
    let mut parent: Vec<Option<usize>> = vec![None; puzzle.classes.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (idx, &class) in puzzle.classes.iter().enumerate() {
        if class == Some(Color::Green) {
            parent[idx] = Some(idx);
            queue.push_back(idx);
        }
    }
    let mut on_route = vec![false; puzzle.classes.len()];
    while let Some(idx) = queue.pop_front() {
        if puzzle.classes[idx] == Some(Color::Red) {
            let mut cell = parent[idx];
            while let Some(step) = cell.filter(|&step| puzzle.classes[step] != Some(Color::Green)) {
                on_route[step] = true;
                cell = parent[step];
            }
            break;
        }
        for next in puzzle.neighbours(idx) {
            let floor = matches!(puzzle.classes[next], Some(Color::White | Color::Red));
            if floor && parent[next].is_none() {
                parent[next] = Some(idx);
                queue.push_back(next);
            }
        }
    }
    on_route
}

/// The number of 4-connected pieces of `mask`.
fn pieces(frame: &PixelClasses, mask: &[bool]) -> usize {
    let mut seen = vec![false; mask.len()];
    let mut count = 0;
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        count += 1;
        seen[start] = true;
        let mut stack = vec![start];
        while let Some(idx) = stack.pop() {
            for next in frame.neighbours(idx) {
                if mask[next] && !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
    }
    count
}

/// Scores the last frame of `video` at colour `tolerance` (see the module docs).
pub(crate) fn score(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> Score {
    let puzzle = PixelClasses::read(&instance.first_frame, 0, tolerance);
    let last = PixelClasses::read(video, video.frames() - 1, tolerance);
    let on_route = route(&puzzle);
    let orange = last.mask(Color::Orange);
    let count = |mask: &[bool]| mask.iter().filter(|&&bit| bit).count();
    let both = |a: &[bool], b: &[bool]| a.iter().zip(b).filter(|&(&x, &y)| x && y).count();

    let walls = puzzle.mask(Color::Black);
    let walls_kept = share(both(&walls, &last.mask(Color::Black)), count(&walls), 1.0);
    let orange_count = count(&orange);
    let orange_on_route = both(&orange, &on_route);
    let crossing = share(both(&orange, &walls), orange_count, 0.0);
    let crossing_factor = if crossing < 0.05 {
        1.0
    } else if crossing < 0.1 {
        0.7
    } else {
        0.3
    };
    let mut validity = share(orange_on_route, orange_count, 0.0) * crossing_factor;
    let mut completeness = share(orange_on_route, count(&on_route), 1.0);
    let mut continuity = if orange_count == 0 {
        0.0
    } else {
        let markers = puzzle.classes.iter().map(|&class| matches!(class, Some(Color::Green | Color::Red)));
        let joined: Vec<bool> = orange.iter().zip(markers).map(|(&path, marker)| path || marker).collect();
        1.0 / pieces(&last, &joined) as f64
    };
    if walls_kept < MIN_WALLS_KEPT {
        (validity, completeness, continuity) = (0.0, 0.0, 0.0);
    }
    let markers_kept = puzzle
        .classes
        .iter()
        .zip(&last.classes)
        .all(|(&before, &now)| !matches!(before, Some(Color::Green | Color::Red)) || now == before);
    let rest_kept = puzzle
        .classes
        .iter()
        .zip(&last.classes)
        .zip(&on_route)
        .all(|((&before, &now), &route)| route || now == before);
    Score::weighted(
        &[
            ("path_validity", 45, validity),
            ("path_completeness", 30, completeness),
            ("continuity", 20, continuity),
            ("wall_preservation", 5, walls_kept),
        ],
        &[
            ("route_drawn", orange_count == orange_on_route && orange_on_route == count(&on_route)),
            ("start_and_flag_kept", markers_kept),
            ("nothing_else_changed", rest_kept),
            ("route_grows_from_start", grows_from_start(instance, video, &puzzle)),
        ],
    )
}

/// Whether, in every frame between the first and the last, the pixels at least halfway from
/// their puzzle colour to their answer colour (the route drawn so far) form one 4-connected piece
/// with the green start.
fn grows_from_start(instance: &TaskInstance, video: &TaskVideo, puzzle: &PixelClasses) -> bool {
    let answer_frame = instance.ground_truth.frames() - 1;
    let width = puzzle.width;
    let start = puzzle.mask(Color::Green);
    (1..video.frames().saturating_sub(1)).all(|frame_idx| {
        let drawn: Vec<bool> = (0..puzzle.classes.len())
            .map(|idx| {
                let (y, x) = (idx / width, idx % width);
                let from = instance.first_frame.pixel(0, y, x);
                let to = instance.ground_truth.pixel(answer_frame, y, x);
                let (along, _, length) = on_segment(video.pixel(frame_idx, y, x), from, to);
                start[idx] || (length > 0.0 && along >= 0.5)
            })
            .collect();
        pieces(puzzle, &drawn) <= 1
    })
}
