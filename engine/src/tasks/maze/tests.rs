//! Maze invariants and wrong answers.
#![expect(clippy::float_cmp, reason = "the generator paints exact palette values")]
use super::*;
use crate::tasks::grid::Cell;

fn instance(seed: u64, size: usize) -> TaskInstance {
    TaskKind::Maze.generate(seed, &TaskParams { size, frames: 5 }).unwrap()
}

/// The puzzle with `units` painted orange, as a two-frame video.
fn drawn(instance: &TaskInstance, units: &[(usize, usize)]) -> TaskVideo {
    let mut last = instance.first_frame.clone();
    for &(y, x) in units {
        last.set_pixel(0, y, x, Color::Orange);
    }
    TaskVideo::concat(&[instance.first_frame.clone(), last]).unwrap()
}

#[test]
fn mazes_are_perfect() {
    for size in 2..=8 {
        for seed in 0..20 {
            let maze = Maze::carve(size, &mut SplitMix64::new(seed));
            let passages = maze.open_east.iter().chain(&maze.open_south).filter(|&&open| open).count();
            // A connected graph on n^2 cells with n^2 - 1 edges is a tree: one path between any two.
            assert_eq!(passages, size * size - 1);
            assert!(maze.search(Cell::new(0, 0)).iter().all(Option::is_some));
        }
    }
}

#[test]
fn the_path_is_long_and_walks_through_openings() {
    for size in [2, 4, 5, 8] {
        for seed in 0..20 {
            let instance = instance(seed, size);
            let maze = Maze::carve(size, &mut SplitMix64::new(seed));
            let Answer::Maze { path } = &instance.answer else { panic!("not a maze answer") };
            assert!(path.len() > size.min(3), "size {size} seed {seed}: {} cells", path.len());
            assert!(path.windows(2).all(|pair| maze.is_open(pair[0], pair[1])));
            let ((start_y, start_x), (flag_y, flag_x)) = (unit_of(path[0]), unit_of(path[path.len() - 1]));
            assert_eq!(instance.first_frame.pixel(0, start_y, start_x), Color::Green.signed());
            assert_eq!(instance.first_frame.pixel(0, flag_y, flag_x), Color::Red.signed());
        }
    }
}

#[test]
fn each_patch_is_one_cell_with_its_top_and_left_walls() {
    let instance = instance(4, 5);
    let frame = &instance.first_frame;
    assert_eq!((frame.height(), frame.width()), (12, 12));
    for idx in 0..12 {
        // The padding row and column, the outer walls, and every post are black.
        for (y, x) in [(11, idx), (idx, 11), (0, idx), (idx, 0), (10, idx), (idx, 10)] {
            assert_eq!(frame.pixel(0, y, x), Color::Black.signed());
        }
    }
    for (y, x) in (0..6).flat_map(|row| (0..6).map(move |col| (2 * row, 2 * col))) {
        assert_eq!(frame.pixel(0, y, x), Color::Black.signed());
    }
    let last = instance.ground_truth.repeat_frame(4, 1);
    let targets = instance.token_targets();
    for row in 0..6 {
        for col in 0..6 {
            let on_path =
                last.pixel(0, 2 * row + 1, 2 * col + 1) != Color::White.signed() && row < 5 && col < 5;
            assert_eq!(targets[row * 6 + col] == 1.0, on_path, "token ({row}, {col})");
        }
    }
}

#[test]
fn the_path_unfolds_frame_by_frame() {
    let instance = instance(9, 6);
    let orange = |frame_idx: usize| {
        let frame = instance.ground_truth.repeat_frame(frame_idx, 1);
        (0..14 * 14).filter(|idx| frame.pixel(0, idx / 14, idx % 14) == Color::Orange.signed()).count()
    };
    let counts: Vec<usize> = (0..5).map(orange).collect();
    assert_eq!(counts[0], 0);
    assert!(counts.windows(2).all(|pair| pair[0] < pair[1]), "{counts:?}");
    let partial = instance.score(&instance.ground_truth.repeat_frame(2, 2)).unwrap();
    assert!(!partial.solved && partial.value > 0.5 && partial.value < 1.0, "{partial:?}");
}

#[test]
fn a_path_into_a_dead_end_scores_low_with_credit_for_the_shared_stretch() {
    let mut mostly_wrong_cases = 0;
    for size in [4, 5, 8] {
        for seed in 0..20 {
            let instance = instance(seed, size);
            let maze = Maze::carve(size, &mut SplitMix64::new(seed));
            let Answer::Maze { path } = &instance.answer else { panic!("not a maze answer") };
            // The cell off the route whose way from the start shares the least with the route.
            let all = (0..size * size).map(|idx| Cell::new(idx / size, idx % size));
            let flag = path[path.len() - 1];
            let Some(wrong) = all
                .filter(|cell| !path.contains(cell))
                .map(|cell| maze.path(path[0], cell))
                .filter(|way| !way.contains(&flag))
                .max_by_key(|way| {
                    // Cells off the route minus cells on it, shifted to stay unsigned.
                    let off_route = way.iter().filter(|cell| !path.contains(cell)).count();
                    2 * off_route + path.len() - way.len()
                })
            else {
                continue; // Every dead end lies beyond the flag.
            };
            let units = path_units(&wrong);
            let score = instance.score(&drawn(&instance, &units[1..])).unwrap();
            assert!(!score.solved);
            // Partial credit for the stretch shared with the route; low when the way leaves the
            // route before half of it and is mostly off it.
            let shared = wrong.iter().filter(|cell| path.contains(cell)).count();
            let mostly_wrong = wrong.len() - shared > shared && 2 * shared <= path.len();
            mostly_wrong_cases += usize::from(mostly_wrong);
            let bound = if mostly_wrong { 0.5 } else { 0.75 };
            assert!(score.value < bound, "size {size} seed {seed}: {score:?}");
        }
    }
    assert!(mostly_wrong_cases >= 20, "only {mostly_wrong_cases} mostly wrong paths");
}

#[test]
fn a_path_through_the_walls_scores_low() {
    for seed in 0..20 {
        let instance = instance(seed, 5);
        let Answer::Maze { path } = &instance.answer else { panic!("not a maze answer") };
        let ((start_y, start_x), (flag_y, flag_x)) = (unit_of(path[0]), unit_of(path[path.len() - 1]));
        // Straight down (or up) from the start, then across to the flag.
        let mut units: Vec<(usize, usize)> = Vec::new();
        let (low_y, high_y) = (start_y.min(flag_y), start_y.max(flag_y));
        units.extend((low_y..=high_y).map(|y| (y, start_x)));
        let (low_x, high_x) = (start_x.min(flag_x), start_x.max(flag_x));
        units.extend((low_x..=high_x).map(|x| (flag_y, x)));
        units.retain(|&unit| unit != (start_y, start_x) && unit != (flag_y, flag_x));
        if units.iter().all(|&(y, x)| instance.first_frame.pixel(0, y, x) != Color::Black.signed()) {
            continue; // The straight way happens to be open here.
        }
        let score = instance.score(&drawn(&instance, &units)).unwrap();
        assert!(!score.solved);
        assert!(score.value < 0.5, "seed {seed}: {score:?}");
    }
}
