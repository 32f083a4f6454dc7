//! Turning a `[C, F, H, W]` latent tensor into one RGB image per frame, on the CPU.
//!
//! Two mappings, chosen by the channel count:
//! - **pixels** (`C == 3`): the tensor is a video in `[-1, 1]`, the convention of pixel-space
//!   models; each value maps to `(x + 1) / 2`, clamped to `[0, 1]`.
//! - **channels 0-2, normalised** (any other `C`): the first three channels become red, green
//!   and blue, each stretched from its own minimum to maximum over the whole tensor, so that the
//!   frames of one step share one scale. Fewer than three channels repeat the last one.
//!
//! Real Wan2.1 latents (16 channels) have a known linear map to RGB (DESIGN.md, "Wan21"
//! factors); that preview belongs in a WGSL shader on the GPU and replaces the normalised
//! fallback for such files.

use egui::{Color32, ColorImage};

/// How latent values became colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RgbMapping {
    /// Three channels in `[-1, 1]` shown as pixels.
    Pixels,
    /// The first (up to) three channels, each normalised to its min/max.
    NormalisedChannels,
}

impl RgbMapping {
    /// The mapping used for a tensor with `num_channels` channels.
    #[must_use]
    pub fn for_channels(num_channels: usize) -> Self {
        if num_channels == 3 { Self::Pixels } else { Self::NormalisedChannels }
    }

    /// A short note for the UI on what the colours mean.
    #[must_use]
    pub fn describe(self, num_channels: usize) -> String {
        match self {
            Self::Pixels => "RGB pixels, (x + 1) / 2".to_owned(),
            Self::NormalisedChannels => match num_channels {
                1 => "channel 0, normalised".to_owned(),
                2 => "channels 0-1, normalised".to_owned(),
                _ => "channels 0-2, normalised".to_owned(),
            },
        }
    }
}

/// A `[C, F, H, W]` tensor's values, row-major, with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentVideo {
    /// `[C, F, H, W]`.
    pub shape: [usize; 4],
    /// `C * F * H * W` values.
    pub values: Vec<f32>,
}

impl LatentVideo {
    /// Wraps `values` as shape `[C, F, H, W]`; `None` if the lengths disagree.
    #[must_use]
    pub fn new(shape: [usize; 4], values: Vec<f32>) -> Option<Self> {
        (shape.iter().product::<usize>() == values.len()).then_some(Self { shape, values })
    }

    #[must_use]
    pub fn num_channels(&self) -> usize {
        self.shape[0]
    }

    #[must_use]
    pub fn num_frames(&self) -> usize {
        self.shape[1]
    }

    /// `[H, W]`.
    #[must_use]
    pub fn frame_size(&self) -> [usize; 2] {
        [self.shape[2], self.shape[3]]
    }

    /// The value of channel `channel_idx` at frame `frame_idx`, row `y`, column `x`.
    #[must_use]
    pub fn value(&self, channel_idx: usize, frame_idx: usize, y: usize, x: usize) -> Option<f32> {
        let [channels, frames, height, width] = self.shape;
        if channel_idx >= channels || frame_idx >= frames || y >= height || x >= width {
            return None;
        }
        self.values.get(((channel_idx * frames + frame_idx) * height + y) * width + x).copied()
    }

    /// One channel's values over every frame, `[F, H, W]` flattened.
    fn channel(&self, channel_idx: usize) -> &[f32] {
        let [_, frames, height, width] = self.shape;
        let len = frames * height * width;
        &self.values[channel_idx * len..(channel_idx + 1) * len]
    }

    /// One image per frame, and the mapping used.
    #[must_use]
    pub fn to_rgb_frames(&self) -> (Vec<ColorImage>, RgbMapping) {
        let [channels, frames, height, width] = self.shape;
        let mapping = RgbMapping::for_channels(channels);
        if channels == 0 {
            let black = ColorImage::filled([width, height], Color32::BLACK);
            return (vec![black; frames], mapping);
        }
        // For each of R, G, B: the source channel and the affine map of its values to [0, 1].
        let sources: [(usize, f32, f32); 3] = std::array::from_fn(|rgb_idx| {
            let channel_idx = rgb_idx.min(channels - 1);
            let (scale, offset) = match mapping {
                RgbMapping::Pixels => (0.5, 0.5),
                RgbMapping::NormalisedChannels => normalising_map(self.channel(channel_idx)),
            };
            (channel_idx, scale, offset)
        });

        let frame_len = height * width;
        let images = (0..frames)
            .map(|frame_idx| {
                let planes = sources.map(|(channel_idx, scale, offset)| {
                    let start = frame_idx * frame_len;
                    (&self.channel(channel_idx)[start..start + frame_len], scale, offset)
                });
                let pixels = (0..frame_len)
                    .map(|i| {
                        let [r, g, b] =
                            planes.map(|(plane, scale, offset)| to_byte(plane[i] * scale + offset));
                        Color32::from_rgb(r, g, b)
                    })
                    .collect();
                ColorImage::new([width, height], pixels)
            })
            .collect();
        (images, mapping)
    }
}

/// `(scale, offset)` such that `x * scale + offset` maps the values' min to 0 and max to 1; a
/// constant (or empty, or non-finite) channel maps to mid-grey.
fn normalising_map(values: &[f32]) -> (f32, f32) {
    let (min, max) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = max - min;
    if range.is_finite() && range > 0.0 { (1.0 / range, -min / range) } else { (0.0, 0.5) }
}

/// `[0, 1]` to a byte, clamping; NaN becomes 0.
fn to_byte(unit: f32) -> u8 {
    (unit.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_channels_map_minus_one_to_one_onto_black_to_white() {
        // [C=3, F=1, H=1, W=4]: red ramps -1, 0, 1, 2 (clamped); green and blue stay 0.
        let video = LatentVideo::new(
            [3, 1, 1, 4],
            vec![-1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0],
        )
        .unwrap();
        let (frames, mapping) = video.to_rgb_frames();
        assert_eq!(mapping, RgbMapping::Pixels);
        assert_eq!(frames.len(), 1);
        let reds: Vec<u8> = frames[0].pixels.iter().map(Color32::r).collect();
        assert_eq!(reds, [0, 128, 255, 255]);
        assert!(frames[0].pixels.iter().all(|p| p.g() == 128 && p.b() == 0));
    }

    #[test]
    fn other_channel_counts_normalise_the_first_three_over_all_frames() {
        // [C=4, F=2, H=1, W=1]: channel c holds (c * 10, c * 10 + 2); channel 3 is ignored.
        let values = vec![0.0, 2.0, 10.0, 12.0, 20.0, 20.0, 99.0, -99.0];
        let video = LatentVideo::new([4, 2, 1, 1], values).unwrap();
        let (frames, mapping) = video.to_rgb_frames();
        assert_eq!(mapping, RgbMapping::NormalisedChannels);
        assert_eq!(mapping.describe(4), "channels 0-2, normalised");
        assert_eq!(frames[0].pixels[0], Color32::from_rgb(0, 0, 128), "constant channel 2 is mid-grey");
        assert_eq!(frames[1].pixels[0], Color32::from_rgb(255, 255, 128));
    }

    #[test]
    fn one_channel_is_grey() {
        let video = LatentVideo::new([1, 1, 1, 2], vec![-3.0, 5.0]).unwrap();
        let (frames, _) = video.to_rgb_frames();
        assert_eq!(frames[0].pixels, [Color32::from_gray(0), Color32::from_gray(255)]);
        assert_eq!(frames[0].size, [2, 1]);
    }

    #[test]
    fn images_are_width_by_height_and_values_index_c_f_h_w() {
        // [C=1, F=1, H=2, W=3].
        let video = LatentVideo::new([1, 1, 2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
        let (frames, _) = video.to_rgb_frames();
        assert_eq!(frames[0].size, [3, 2]);
        assert_eq!(video.value(0, 0, 1, 2), Some(5.0));
        assert_eq!(video.value(0, 0, 2, 0), None);
    }

    #[test]
    fn a_shape_that_disagrees_with_the_values_is_refused() {
        assert!(LatentVideo::new([1, 1, 2, 2], vec![0.0; 3]).is_none());
    }

    #[test]
    fn nan_does_not_poison_the_normalisation() {
        let video = LatentVideo::new([1, 1, 1, 3], vec![f32::NAN, 0.0, 1.0]).unwrap();
        let (frames, _) = video.to_rgb_frames();
        assert_eq!(frames[0].pixels, [Color32::from_gray(0), Color32::from_gray(0), Color32::from_gray(255)]);
    }
}
