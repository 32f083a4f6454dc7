//! The CPU reference of every GPU mapping: the same maths as the shaders, in plain Rust, for
//! the tests (GPU read-back against these) and for anything drawn without the GPU.

use egui::{Color32, ColorImage};

use super::colormap::{INF_RGB, NAN_RGB, color32_from_unit_rgb};
use super::image::{DifferenceReduce, GpuImage, GpuTensor, ImageStyle};

/// Channels the latent-to-RGB map reads at most.
pub const MAX_RGB_CHANNELS: usize = 48;

/// `ComfyUI`'s `Wan21.latent_rgb_factors` (`comfy/latent_formats.py` in `comfyanonymous/ComfyUI`):
/// row `c` is the (R, G, B) contribution of Wan2.1 VAE latent channel `c`.
pub const WAN21_LATENT_RGB_FACTORS: [[f32; 3]; 16] = [
    [-0.1299, -0.1692, 0.2932],
    [0.0671, 0.0406, 0.0442],
    [0.3568, 0.2548, 0.1747],
    [0.0372, 0.2344, 0.1420],
    [0.0313, 0.0189, -0.0328],
    [0.0296, -0.0956, -0.0665],
    [-0.3477, -0.4059, -0.2925],
    [0.0166, 0.1902, 0.1975],
    [-0.0412, 0.0267, -0.1364],
    [-0.1293, 0.0740, 0.1636],
    [0.0680, 0.3019, 0.1128],
    [0.0032, 0.0581, 0.0639],
    [-0.1251, 0.0927, 0.1699],
    [0.0060, -0.0633, 0.0005],
    [0.3477, 0.2275, 0.2950],
    [0.1984, 0.0913, 0.1861],
];

/// `ComfyUI`'s `Wan21.latent_rgb_factors_bias` (same file).
pub const WAN21_LATENT_RGB_BIAS: [f32; 3] = [-0.1835, -0.0868, -0.3360];

/// `ComfyUI`'s `Wan22.latent_rgb_factors` (same file): row `c` is the (R, G, B) contribution of
/// Wan2.2 VAE latent channel `c` (the 48-channel VAE of Wan2.2 TI2V 5B).
pub const WAN22_LATENT_RGB_FACTORS: [[f32; 3]; 48] = [
    [0.0119, 0.0103, 0.0046],
    [-0.1062, -0.0504, 0.0165],
    [0.0140, 0.0409, 0.0491],
    [-0.0813, -0.0677, 0.0607],
    [0.0656, 0.0851, 0.0808],
    [0.0264, 0.0463, 0.0912],
    [0.0295, 0.0326, 0.0590],
    [-0.0244, -0.0270, 0.0025],
    [0.0443, -0.0102, 0.0288],
    [-0.0465, -0.0090, -0.0205],
    [0.0359, 0.0236, 0.0082],
    [-0.0776, 0.0854, 0.1048],
    [0.0564, 0.0264, 0.0561],
    [0.0006, 0.0594, 0.0418],
    [-0.0319, -0.0542, -0.0637],
    [-0.0268, 0.0024, 0.0260],
    [0.0539, 0.0265, 0.0358],
    [-0.0359, -0.0312, -0.0287],
    [-0.0285, -0.1032, -0.1237],
    [0.1041, 0.0537, 0.0622],
    [-0.0086, -0.0374, -0.0051],
    [0.0390, 0.0670, 0.2863],
    [0.0069, 0.0144, 0.0082],
    [0.0006, -0.0167, 0.0079],
    [0.0313, -0.0574, -0.0232],
    [-0.1454, -0.0902, -0.0481],
    [0.0714, 0.0827, 0.0447],
    [-0.0304, -0.0574, -0.0196],
    [0.0401, 0.0384, 0.0204],
    [-0.0758, -0.0297, -0.0014],
    [0.0568, 0.1307, 0.1372],
    [-0.0055, -0.0310, -0.0380],
    [0.0239, -0.0305, 0.0325],
    [-0.0663, -0.0673, -0.0140],
    [-0.0416, -0.0047, -0.0023],
    [0.0166, 0.0112, -0.0093],
    [-0.0211, 0.0011, 0.0331],
    [0.1833, 0.1466, 0.2250],
    [-0.0368, 0.0370, 0.0295],
    [-0.3441, -0.3543, -0.2008],
    [-0.0479, -0.0489, -0.0420],
    [-0.0660, -0.0153, 0.0800],
    [-0.0101, 0.0068, 0.0156],
    [-0.0690, -0.0452, -0.0927],
    [-0.0145, 0.0041, 0.0015],
    [0.0421, 0.0451, 0.0373],
    [0.0504, -0.0483, -0.0356],
    [-0.0837, 0.0168, 0.0055],
];

/// `ComfyUI`'s `Wan22.latent_rgb_factors_bias` (same file).
pub const WAN22_LATENT_RGB_BIAS: [f32; 3] = [0.0317, -0.0878, -0.1388];

/// `rows` in the first rows of a full factor table.
fn factor_table(rows: &[[f32; 3]]) -> [[f32; 3]; MAX_RGB_CHANNELS] {
    let mut factors = [[0.0; 3]; MAX_RGB_CHANNELS];
    factors[..rows.len()].copy_from_slice(rows);
    factors
}

/// The affine map `latent_rgb.wgsl` applies to a pixel's channels:
/// `rgb = clamp((latent[..16] · factors + bias) * post_scale + post_offset, 0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatentRgbMap {
    /// Row `c`: the (R, G, B) contribution of channel `c`.
    pub factors: [[f32; 3]; MAX_RGB_CHANNELS],
    pub bias: [f32; 3],
    pub post_scale: [f32; 3],
    pub post_offset: [f32; 3],
}

impl LatentRgbMap {
    /// Wan2.1's latent preview as `ComfyUI` draws it: its `Wan21` factors and bias, then
    /// `preview_to_image` (`latent_preview.py`), which clamps to `[-1, 1]` and maps to
    /// `(x + 1) / 2`; the same as `(x + 1) / 2` clamped to `[0, 1]`.
    #[must_use]
    pub fn wan21() -> Self {
        Self {
            factors: factor_table(&WAN21_LATENT_RGB_FACTORS),
            bias: WAN21_LATENT_RGB_BIAS,
            post_scale: [0.5; 3],
            post_offset: [0.5; 3],
        }
    }

    /// Wan2.2's (48-channel) latent preview as `ComfyUI` draws it, as [`Self::wan21`] with its
    /// `Wan22` factors and bias.
    #[must_use]
    pub fn wan22() -> Self {
        Self {
            factors: factor_table(&WAN22_LATENT_RGB_FACTORS),
            bias: WAN22_LATENT_RGB_BIAS,
            ..Self::wan21()
        }
    }

    /// Colour `k` from channel `min(k, num_channels - 1)`, each mapped by
    /// `x * scale[k] + offset[k]`.
    #[must_use]
    pub fn channels_to_colours(num_channels: usize, scale: [f32; 3], offset: [f32; 3]) -> Self {
        let mut factors = [[0.0; 3]; MAX_RGB_CHANNELS];
        for colour_idx in 0..3 {
            factors[colour_idx.min(num_channels.max(1) - 1)][colour_idx] = 1.0;
        }
        Self { factors, bias: [0.0; 3], post_scale: scale, post_offset: offset }
    }

    /// The map a style (other than the colormapped ones) uses for `num_channels` channels.
    #[must_use]
    pub fn for_style(style: &ImageStyle, num_channels: usize) -> Option<Self> {
        match style {
            ImageStyle::Wan21Latent => Some(Self::wan21()),
            ImageStyle::Wan22Latent => Some(Self::wan22()),
            ImageStyle::Pixels => Some(Self::channels_to_colours(num_channels, [0.5; 3], [0.5; 3])),
            ImageStyle::NormalisedChannels { scale, offset } => {
                Some(Self::channels_to_colours(num_channels, *scale, *offset))
            }
            ImageStyle::Colormap { .. } | ImageStyle::Difference { .. } => None,
        }
    }

    /// The colour of one pixel from its channel values (the first 48 are read), sRGB in
    /// `[0, 1]`; [`NAN_RGB`] if any value read is NaN, else [`INF_RGB`] if any is infinite.
    #[must_use]
    pub fn apply(&self, channels: &[f32]) -> [f32; 3] {
        let channels = &channels[..channels.len().min(MAX_RGB_CHANNELS)];
        if channels.iter().any(|value| value.is_nan()) {
            return NAN_RGB;
        }
        if channels.iter().any(|value| value.is_infinite()) {
            return INF_RGB;
        }
        let mut linear = self.bias;
        for (value, row) in channels.iter().zip(&self.factors) {
            for colour_idx in 0..3 {
                linear[colour_idx] += value * row[colour_idx];
            }
        }
        std::array::from_fn(|colour_idx| {
            (linear[colour_idx] * self.post_scale[colour_idx] + self.post_offset[colour_idx]).clamp(0.0, 1.0)
        })
    }
}

/// `|a - b|` per channel, reduced; NaN if any difference is NaN. `a` and `b` hold one pixel's
/// channels. The same as `channel_difference` in `difference.wgsl`.
#[must_use]
pub fn difference_value(a: &[f32], b: &[f32], reduce: DifferenceReduce) -> f32 {
    let differences = a.iter().zip(b).map(|(a, b)| (a - b).abs());
    if differences.clone().any(f32::is_nan) {
        return f32::NAN;
    }
    match reduce {
        DifferenceReduce::Max => differences.fold(0.0, f32::max),
        DifferenceReduce::Mean => differences.sum::<f32>() / a.len().max(1) as f32,
    }
}

/// The image as the GPU draws it, one pixel per tensor pixel: `[W, H]` pixels.
#[must_use]
pub fn render_cpu(image: &GpuImage) -> ColorImage {
    let [height, width] = image.size();
    let tensor = image.tensor();
    let frame_idx = image.frame_idx();
    let pixel_channels = |tensor: &GpuTensor, pixel_idx: usize, num_channels: usize| -> Vec<f32> {
        (0..num_channels).map(|channel_idx| tensor.plane(channel_idx, frame_idx)[pixel_idx]).collect()
    };
    let num_channels = tensor.num_channels();
    let colour_of = |pixel_idx: usize| -> Color32 {
        let rgb = match image.style() {
            ImageStyle::Colormap { channel_idx, map, range } => {
                map.rgb_of(tensor.plane(*channel_idx, frame_idx)[pixel_idx], *range)
            }
            ImageStyle::Difference { other, reduce, map, range } => {
                let a = pixel_channels(tensor, pixel_idx, num_channels);
                let b = pixel_channels(other, pixel_idx, num_channels);
                map.rgb_of(difference_value(&a, &b, *reduce), *range)
            }
            style => {
                let Some(map) = LatentRgbMap::for_style(style, num_channels) else {
                    unreachable!("every other style is an RGB map")
                };
                map.apply(&pixel_channels(tensor, pixel_idx, num_channels.min(MAX_RGB_CHANNELS)))
            }
        };
        color32_from_unit_rgb(rgb)
    };
    ColorImage::new([width, height], (0..height * width).map(colour_of).collect())
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "the maps are exact on these inputs (0, 1, powers of two)")]
mod tests {
    use super::*;
    use crate::viewer::gpu::{Colormap, ImageKey};

    #[test]
    fn wan21_maps_a_one_hot_latent_to_its_row_plus_bias() {
        let map = LatentRgbMap::wan21();
        for (channel_idx, row) in WAN21_LATENT_RGB_FACTORS.iter().enumerate() {
            let mut latent = [0.0; 16];
            latent[channel_idx] = 1.0;
            let rgb = map.apply(&latent);
            for colour_idx in 0..3 {
                let expected =
                    ((row[colour_idx] + WAN21_LATENT_RGB_BIAS[colour_idx] + 1.0) / 2.0).clamp(0.0, 1.0);
                assert!((rgb[colour_idx] - expected).abs() < 1e-6, "channel {channel_idx}");
            }
        }
        // A zero latent is the bias alone: (-0.1835, -0.0868, -0.3360) -> (x + 1) / 2.
        let rgb = map.apply(&[0.0; 16]);
        assert!(
            (rgb[0] - 0.40825).abs() < 1e-6
                && (rgb[1] - 0.4566).abs() < 1e-6
                && (rgb[2] - 0.332).abs() < 1e-6
        );
    }

    #[test]
    fn wan22_maps_a_one_hot_latent_to_its_row_plus_bias() {
        let map = LatentRgbMap::wan22();
        for (channel_idx, row) in WAN22_LATENT_RGB_FACTORS.iter().enumerate() {
            let mut latent = [0.0; 48];
            latent[channel_idx] = 1.0;
            let rgb = map.apply(&latent);
            for colour_idx in 0..3 {
                let expected =
                    ((row[colour_idx] + WAN22_LATENT_RGB_BIAS[colour_idx] + 1.0) / 2.0).clamp(0.0, 1.0);
                assert!((rgb[colour_idx] - expected).abs() < 1e-6, "channel {channel_idx}");
            }
        }
        // Channel 47 (the last row) counts: the table is read to its end.
        assert_eq!(WAN22_LATENT_RGB_FACTORS[47], [-0.0837, 0.0168, 0.0055]);
    }

    #[test]
    fn wan21_clamps_like_comfyui() {
        // Channel 2 pushes every colour up, channel 6 down.
        let mut latent = [0.0; 16];
        latent[2] = 10.0;
        assert_eq!(LatentRgbMap::wan21().apply(&latent), [1.0, 1.0, 1.0]);
        latent[2] = 0.0;
        latent[6] = 10.0;
        assert_eq!(LatentRgbMap::wan21().apply(&latent), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn pixels_map_minus_one_to_one_onto_zero_to_one_and_repeat_the_last_channel() {
        let pixels = LatentRgbMap::for_style(&ImageStyle::Pixels, 3).unwrap();
        assert_eq!(pixels.apply(&[-1.0, 0.0, 1.0]), [0.0, 0.5, 1.0]);
        assert_eq!(pixels.apply(&[-3.0, 0.5, f32::NAN]), NAN_RGB);
        assert_eq!(pixels.apply(&[f32::INFINITY, 0.5, f32::NAN]), NAN_RGB, "NaN wins");
        assert_eq!(pixels.apply(&[f32::NEG_INFINITY, 0.5, 0.0]), INF_RGB);
        assert_ne!(pixels.apply(&[f32::MAX, 0.5, 0.0]), INF_RGB, "f32::MAX is finite");
        let two = LatentRgbMap::channels_to_colours(2, [1.0; 3], [0.0; 3]);
        assert_eq!(two.apply(&[0.25, 0.75]), [0.25, 0.75, 0.75]);
        let one = LatentRgbMap::channels_to_colours(1, [1.0, 2.0, 0.5], [0.0, 0.0, 0.25]);
        assert_eq!(one.apply(&[0.25]), [0.25, 0.5, 0.375]);
    }

    #[test]
    fn differences_reduce_over_channels_and_keep_nan() {
        let (a, b) = ([1.0, -1.0, 0.0], [0.0, 0.5, 0.0]);
        assert_eq!(difference_value(&a, &b, DifferenceReduce::Max), 1.5);
        assert!((difference_value(&a, &b, DifferenceReduce::Mean) - 2.5 / 3.0).abs() < 1e-6);
        assert!(difference_value(&[f32::NAN], &[0.0], DifferenceReduce::Max).is_nan());
    }

    #[test]
    fn render_cpu_reads_the_chosen_frame() {
        // [C=1, F=2, H=1, W=2]: frame 1 holds 2 and 3.
        let tensor = GpuTensor::new(ImageKey(0), vec![0.0, 1.0, 2.0, 3.0], [1, 2, 1, 2]).unwrap();
        let style = ImageStyle::Colormap { channel_idx: 0, map: Colormap::Viridis, range: [2.0, 3.0] };
        let image = render_cpu(&GpuImage::new(tensor, 1, style).unwrap());
        assert_eq!(image.size, [2, 1]);
        assert_eq!(image.pixels[0], color32_from_unit_rgb(Colormap::Viridis.rgb_at(0.0)));
        assert_eq!(image.pixels[1], color32_from_unit_rgb(Colormap::Viridis.rgb_at(1.0)));
    }
}
