//! The rule every task's frames between the puzzle and the answer obey: each pixel moves from its
//! puzzle colour towards its answer colour and never back.
//!
//! A produced pixel of an intermediate frame (frames `1..F' - 1` of `[3, F', H, W]`) is read on
//! the segment from its puzzle colour `p` (the instance's first frame) to its answer colour `a`
//! (the ground truth's last frame): it must lie within `tolerance` of that segment (a blend of the
//! two is allowed, any other colour is not; where `p == a` the pixel must stay within `tolerance`
//! of `p`), and its position along the segment, `t = <x - p, a - p> / |a - p|^2` clamped to
//! `[0, 1]`, must not fall back by more than `tolerance / |a - p|` from one frame to the next.
//! The last frame is judged by the task's own scorer; the first frame here is the puzzle itself,
//! so a pixel starts at `t = 0`.
//!
//! Gravity has its own rule ([`super::gravity::frames_fall`]): its blocks pass through cells
//! that are neither their puzzle nor their answer colour.
use super::TaskInstance;
use super::video::TaskVideo;

/// Whether every intermediate frame of `video` keeps each pixel between its puzzle and answer
/// colour, moving only towards the answer (see the module docs). A video of one or two frames
/// has no intermediate frame and passes.
pub(crate) fn frames_unfold(instance: &TaskInstance, video: &TaskVideo, tolerance: f32) -> bool {
    let answer_frame = instance.ground_truth.frames() - 1;
    let (height, width) = (video.height(), video.width());
    let last = video.frames().saturating_sub(1);
    for y in 0..height {
        for x in 0..width {
            let from = instance.first_frame.pixel(0, y, x);
            let to = instance.ground_truth.pixel(answer_frame, y, x);
            let mut reached = 0.0_f32;
            for frame_idx in 1..last {
                let Some((along, slack)) = position(video.pixel(frame_idx, y, x), from, to, tolerance) else {
                    return false;
                };
                if along + slack < reached {
                    return false;
                }
                reached = reached.max(along);
            }
        }
    }
    true
}

/// `(t, slack)`: the position of `rgb` along the segment `from -> to` and the fall-back allowed
/// from it (`tolerance` over the segment's length), or `None` when `rgb` is more than
/// `tolerance` from the segment.
fn position(rgb: [f32; 3], from: [f32; 3], to: [f32; 3], tolerance: f32) -> Option<(f32, f32)> {
    let (along, distance, length) = on_segment(rgb, from, to);
    if distance > tolerance {
        return None;
    }
    Some((along, if length > 0.0 { tolerance / length } else { 0.0 }))
}

/// `(t, distance, length)`: where `rgb` projects on the segment `from -> to` (`t` in `[0, 1]`,
/// 0 for a segment of length 0), its distance from the segment, and the segment's length.
pub(crate) fn on_segment(rgb: [f32; 3], from: [f32; 3], to: [f32; 3]) -> (f32, f32, f32) {
    let span = [to[0] - from[0], to[1] - from[1], to[2] - from[2]];
    let length_sq: f32 = span.iter().map(|v| v * v).sum();
    let offset = [rgb[0] - from[0], rgb[1] - from[1], rgb[2] - from[2]];
    let along = if length_sq > 0.0 {
        ((0..3).map(|ch| offset[ch] * span[ch]).sum::<f32>() / length_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let distance_sq: f32 = (0..3).map(|ch| (offset[ch] - along * span[ch]).powi(2)).sum();
    (along, distance_sq.sqrt(), length_sq.sqrt())
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "the generators paint exact palette values")]
mod tests {
    use super::*;
    use crate::tasks::{Color, TaskKind, TaskParams};

    fn maze() -> TaskInstance {
        TaskKind::Maze.generate(5, &TaskParams { size: 4, frames: 6 }).unwrap()
    }

    #[test]
    fn the_ground_truth_unfolds() {
        for kind in [TaskKind::Maze, TaskKind::Symmetry, TaskKind::FloodFill, TaskKind::Rotation] {
            let params = TaskParams { frames: 6, ..kind.default_params() };
            let instance = kind.generate(3, &params).unwrap();
            assert!(frames_unfold(&instance, &instance.ground_truth, 0.25), "{}", kind.name());
        }
    }

    #[test]
    fn a_blend_passes_and_a_foreign_colour_fails() {
        let instance = maze();
        let answer = &instance.ground_truth;
        let last = answer.frames() - 1;
        // A pixel that turns to its answer colour at frame 2 or later; frame `turn - 1` shows it
        // halfway there.
        let turns_at =
            |y: usize, x: usize| (0..=last).find(|&f| answer.pixel(f, y, x) == answer.pixel(last, y, x));
        let (y, x, turn) = (0..answer.height())
            .flat_map(|y| (0..answer.width()).map(move |x| (y, x)))
            .filter(|&(y, x)| instance.first_frame.pixel(0, y, x) != answer.pixel(last, y, x))
            .find_map(|(y, x)| turns_at(y, x).filter(|&turn| turn >= 2).map(|turn| (y, x, turn)))
            .expect("the path changes some pixel after frame 1");
        let mut values = answer.values().to_vec();
        let plane = answer.height() * answer.width();
        let index =
            |frame: usize, ch: usize| ((ch * answer.frames()) + frame) * plane + y * answer.width() + x;
        for ch in 0..3 {
            values[index(turn - 1, ch)] =
                0.5 * (instance.first_frame.pixel(0, y, x)[ch] + answer.pixel(last, y, x)[ch]);
        }
        let blend = TaskVideo::from_values(answer.shape(), values.clone()).unwrap();
        assert!(frames_unfold(&instance, &blend, 0.25));
        for ch in 0..3 {
            values[index(turn - 1, ch)] = Color::Blue.signed()[ch];
        }
        let foreign = TaskVideo::from_values(answer.shape(), values).unwrap();
        assert!(!frames_unfold(&instance, &foreign, 0.25));
    }

    #[test]
    fn a_pixel_that_goes_back_fails() {
        let instance = maze();
        let answer = &instance.ground_truth;
        // Frame 2 shows the answer everywhere, frame 3 the puzzle again.
        let mut frames: Vec<TaskVideo> = (0..answer.frames()).map(|f| answer.repeat_frame(f, 1)).collect();
        frames[2] = answer.repeat_frame(answer.frames() - 1, 1);
        frames[3] = instance.first_frame.clone();
        let back = TaskVideo::concat(&frames).unwrap();
        assert!(!frames_unfold(&instance, &back, 0.25));
    }
}
