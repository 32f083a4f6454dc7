//! The tasks' colours, and reading a noisy pixel back as one of them.
//!
//! Pixels live in `[-1, 1]` per channel (white = +1): an 8-bit channel `v` maps to
//! `v / 127.5 - 1`. The colours are saturated so that VBVR-Bench's HSV ranges take them (its maze
//! scorer finds orange at hue 10-30 and green at 35-85 on `OpenCV`'s 0-180 scale, red near 0).

/// A colour of the tasks' palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    /// Floor and background: `(255, 255, 255)`.
    White,
    /// Walls, ledges and the ground: `(0, 0, 0)`.
    Black,
    /// The maze's start, and a block colour: `(0, 200, 0)`.
    Green,
    /// The maze's flag, and a block colour: `(255, 0, 0)`.
    Red,
    /// The maze's path, and a block colour: `(255, 140, 0)`.
    Orange,
    /// Flood fill, and a block colour: `(0, 0, 255)`.
    Blue,
}

impl Color {
    /// Every colour, in declaration order.
    pub const ALL: [Self; 6] = [Self::White, Self::Black, Self::Green, Self::Red, Self::Orange, Self::Blue];

    /// The colours a block can take in the block tasks (symmetry, gravity).
    pub const BLOCKS: [Self; 4] = [Self::Blue, Self::Red, Self::Green, Self::Orange];

    /// 8-bit RGB.
    #[must_use]
    pub const fn rgb8(self) -> [u8; 3] {
        match self {
            Self::White => [255, 255, 255],
            Self::Black => [0, 0, 0],
            Self::Green => [0, 200, 0],
            Self::Red => [255, 0, 0],
            Self::Orange => [255, 140, 0],
            Self::Blue => [0, 0, 255],
        }
    }

    /// RGB in the pixel-space range `[-1, 1]`.
    #[must_use]
    pub fn signed(self) -> [f32; 3] {
        self.rgb8().map(|channel| f32::from(channel) / 127.5 - 1.0)
    }

    /// Lower-case English name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::White => "white",
            Self::Black => "black",
            Self::Green => "green",
            Self::Red => "red",
            Self::Orange => "orange",
            Self::Blue => "blue",
        }
    }
}

/// How far (Euclidean, over the three channels in `[-1, 1]`) a pixel may lie from a palette
/// colour and still count as it. Under half the smallest gap between two colours (red to orange,
/// 1.10), so no pixel is near two colours; uniform noise in `[-1, 1]^3` lands within it of a given
/// interior colour about 7% of the time, of a corner colour (white, black, red, blue) under 1%.
pub const TOLERANCE: f32 = 0.5;

/// The largest tolerance a scorer accepts: under half the red-to-orange gap (1.098), so that no
/// pixel is within it of two colours.
pub const MAX_TOLERANCE: f32 = 0.54;

/// The colour among `candidates` nearest to `rgb`, if it lies within [`TOLERANCE`].
#[must_use]
pub fn classify(rgb: [f32; 3], candidates: &[Color]) -> Option<Color> {
    classify_within(rgb, candidates, TOLERANCE)
}

/// The colour among `candidates` nearest to `rgb`, if it lies within `tolerance`.
#[must_use]
pub fn classify_within(rgb: [f32; 3], candidates: &[Color], tolerance: f32) -> Option<Color> {
    nearest(rgb, candidates).and_then(|(color, distance)| (distance <= tolerance).then_some(color))
}

/// The colour among `candidates` nearest to `rgb` and its RGB distance (`None` without
/// candidates).
#[must_use]
pub fn nearest(rgb: [f32; 3], candidates: &[Color]) -> Option<(Color, f32)> {
    let mut best: Option<(Color, f32)> = None;
    for &color in candidates {
        let reference = color.signed();
        let distance_sq: f32 = (0..3).map(|ch| (rgb[ch] - reference[ch]).powi(2)).sum();
        if best.is_none_or(|(_, best_sq)| distance_sq < best_sq) {
            best = Some((color, distance_sq));
        }
    }
    best.map(|(color, distance_sq)| (color, distance_sq.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_more_than_two_tolerances_apart() {
        for (idx, &a) in Color::ALL.iter().enumerate() {
            for &b in &Color::ALL[idx + 1..] {
                let gap: f32 = (0..3).map(|ch| (a.signed()[ch] - b.signed()[ch]).powi(2)).sum::<f32>().sqrt();
                assert!(gap > 2.0 * MAX_TOLERANCE, "{} and {} are {gap} apart", a.name(), b.name());
            }
        }
    }

    #[test]
    fn classification_takes_noisy_pixels_and_refuses_far_ones() {
        let [r, g, b] = Color::Orange.signed();
        assert_eq!(classify([r - 0.2, g + 0.2, b + 0.1], &Color::ALL), Some(Color::Orange));
        assert_eq!(classify([0.0, 0.0, 0.0], &Color::ALL), None);
        assert_eq!(classify(Color::Red.signed(), &[Color::White, Color::Black]), None);
        assert_eq!(classify(Color::White.signed(), &Color::ALL), Some(Color::White));
    }
}
