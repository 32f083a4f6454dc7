//! What the GPU draws: tensors, uploaded once per key, and how to colour one frame of them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::colormap::Colormap;

/// Names a tensor's values for the upload cache. Equal keys must mean equal values: a tensor
/// is uploaded the first time its key is drawn and reused while the key stays in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageKey(pub u64);

impl ImageKey {
    /// A key from anything hashable that names the values, e.g.
    /// `(file_path, seed_idx, step_idx, "x0")`. The same value gives the same key within a run.
    #[must_use]
    pub fn of(name: &impl Hash) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut hasher);
        Self(hasher.finish())
    }
}

/// Reads frame `frame_idx` of a tensor kept out of memory, as `[C, H, W]` f32 values.
pub type FrameReader = Arc<dyn Fn(usize) -> Result<Vec<f32>, String> + Send + Sync>;

/// A `[C, F, H, W]` f32 tensor to draw from. The values are shared (cloning is cheap) and go
/// to the GPU once per [`ImageKey`]; each channel's range is found once, at construction, so
/// that styles and legends read it every frame for free. A tensor too large to hold (a decoded
/// 480p video) is *frames only*: it holds no values, only a way to read one frame, and is drawn
/// through down-sampled frames ([`crate::viewer`]'s frame levels), never whole.
#[derive(Clone)]
pub struct GpuTensor {
    key: ImageKey,
    values: Arc<[f32]>,
    /// For a frames-only tensor, how to read one of its frames.
    frames: Option<FrameReader>,
    shape: [usize; 4],
    /// Per channel, `[min, max]` of its finite values.
    ranges: Arc<[Option<[f32; 2]>]>,
    non_finite: NonFiniteCounts,
}

/// How many values of a tensor are NaN and how many are +/-infinity: drawn in their own
/// colours ([`super::NAN_RGB`], [`super::INF_RGB`]) and flagged by the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NonFiniteCounts {
    pub nan: usize,
    pub infinite: usize,
}

impl NonFiniteCounts {
    #[must_use]
    pub fn any(self) -> bool {
        self.nan + self.infinite > 0
    }

    /// "3 NaN (magenta) and 1 infinite (cyan) values", for a warning.
    #[must_use]
    pub fn describe(self) -> String {
        match (self.nan, self.infinite) {
            (0, 0) => "no NaN or infinite values".to_owned(),
            (nan, 0) => format!("{nan} NaN values (drawn magenta)"),
            (0, infinite) => format!("{infinite} infinite values (drawn cyan)"),
            (nan, infinite) => {
                format!("{nan} NaN (drawn magenta) and {infinite} infinite values (drawn cyan)")
            }
        }
    }
}

impl fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuTensor")
            .field("key", &self.key)
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl GpuTensor {
    /// The most elements a tensor may have: the shaders index it with 32-bit integers.
    pub const MAX_LEN: usize = (u32::MAX / 4) as usize;

    /// `values` (row-major) as a `[C, F, H, W]` tensor named `key`; `None` if the shape
    /// disagrees with the length, has a zero dimension, or exceeds [`Self::MAX_LEN`].
    #[must_use]
    pub fn new(key: ImageKey, values: impl Into<Arc<[f32]>>, shape: [usize; 4]) -> Option<Self> {
        let values = values.into();
        let len = shape.iter().try_fold(1_usize, |len, &dim| len.checked_mul(dim))?;
        if len == 0 || len != values.len() || len > Self::MAX_LEN {
            return None;
        }
        let channel_len = len / shape[0];
        let mut non_finite = NonFiniteCounts::default();
        let ranges = values.chunks_exact(channel_len).map(|channel| scan(channel, &mut non_finite)).collect();
        Some(Self { key, values, frames: None, shape, ranges, non_finite })
    }

    /// A `[C, F, H, W]` tensor that holds no values: `read_frame` gives one frame at a time.
    /// Its channel ranges and non-finite counts are unknown (`None`, zero). `None` for a zero
    /// dimension.
    #[must_use]
    pub fn frames_only(key: ImageKey, shape: [usize; 4], read_frame: FrameReader) -> Option<Self> {
        if shape.contains(&0) {
            return None;
        }
        let ranges = vec![None; shape[0]].into();
        Some(Self {
            key,
            values: Arc::from(Vec::new()),
            frames: Some(read_frame),
            shape,
            ranges,
            non_finite: NonFiniteCounts::default(),
        })
    }

    /// Whether the tensor holds no values, only a way to read its frames.
    #[must_use]
    pub fn is_frames_only(&self) -> bool {
        self.frames.is_some()
    }

    /// Frame `frame_idx` as `[C, H, W]` values: read through the reader of a frames-only
    /// tensor, copied out of the values otherwise; `None` past the last frame.
    #[must_use]
    pub fn read_frame(&self, frame_idx: usize) -> Option<Result<Vec<f32>, String>> {
        if frame_idx >= self.num_frames() {
            return None;
        }
        Some(match &self.frames {
            Some(read_frame) => read_frame(frame_idx),
            None => {
                Ok((0..self.num_channels()).flat_map(|c| self.plane(c, frame_idx).iter().copied()).collect())
            }
        })
    }

    /// A `[C, H, W]` image as a one-frame tensor.
    #[must_use]
    pub fn image(
        key: ImageKey,
        values: impl Into<Arc<[f32]>>,
        [channels, height, width]: [usize; 3],
    ) -> Option<Self> {
        Self::new(key, values, [channels, 1, height, width])
    }

    /// An `[H, W]` scalar field (a heatmap) as a one-channel, one-frame tensor.
    #[must_use]
    pub fn scalar_field(
        key: ImageKey,
        values: impl Into<Arc<[f32]>>,
        [height, width]: [usize; 2],
    ) -> Option<Self> {
        Self::new(key, values, [1, 1, height, width])
    }

    #[must_use]
    pub fn key(&self) -> ImageKey {
        self.key
    }

    /// All `C * F * H * W` values, row-major (none for a frames-only tensor).
    #[must_use]
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// `[C, F, H, W]`.
    #[must_use]
    pub fn shape(&self) -> [usize; 4] {
        self.shape
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

    /// One channel at one frame: `H * W` values, row-major. Panics on an index out of range.
    pub(super) fn plane(&self, channel_idx: usize, frame_idx: usize) -> &[f32] {
        let [_, frames, height, width] = self.shape;
        let start = (channel_idx * frames + frame_idx) * height * width;
        &self.values[start..start + height * width]
    }

    /// How many values are NaN or infinite.
    #[must_use]
    pub fn non_finite(&self) -> NonFiniteCounts {
        self.non_finite
    }

    /// `[min, max]` of the finite values of channel `channel_idx` over every frame; `None` if
    /// the channel does not exist or holds no finite value.
    #[must_use]
    pub fn channel_range(&self, channel_idx: usize) -> Option<[f32; 2]> {
        self.ranges.get(channel_idx).copied().flatten()
    }
}

/// `[min, max]` of the finite values (`None` if there are none), counting the others into
/// `non_finite`: one pass over the values.
fn scan(values: &[f32], non_finite: &mut NonFiniteCounts) -> Option<[f32; 2]> {
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for &value in values {
        if value.is_finite() {
            min = min.min(value);
            max = max.max(value);
        } else if value.is_nan() {
            non_finite.nan += 1;
        } else {
            non_finite.infinite += 1;
        }
    }
    (min <= max).then_some([min, max])
}

/// How [`ImageStyle::Difference`] reduces `|a - b|` over the channels of a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum DifferenceReduce {
    /// The largest channel difference.
    #[default]
    Max,
    /// The mean channel difference.
    Mean,
}

/// How one frame of a tensor becomes colours.
#[derive(Debug, Clone)]
pub enum ImageStyle {
    /// Wan2.1's 16 latent channels previewed as RGB through `ComfyUI`'s `Wan21` factors (a
    /// 16 x 3 matrix and a bias), then `(x + 1) / 2` clamped to `[0, 1]` as `ComfyUI` does.
    /// Needs `C == 16`.
    Wan21Latent,
    /// Wan2.2's 48 latent channels (the TI2V 5B VAE) previewed as RGB through `ComfyUI`'s
    /// `Wan22` factors, then as [`ImageStyle::Wan21Latent`]. Needs `C == 48`.
    Wan22Latent,
    /// Three channels in `[-1, 1]` as RGB pixels, `(x + 1) / 2` clamped. Fewer channels
    /// repeat the last; more are ignored.
    Pixels,
    /// The first (up to) three channels as red, green and blue, colour `k` mapped by
    /// `x * scale[k] + offset[k]` and clamped to `[0, 1]`. Fewer channels repeat the last.
    /// [`ImageStyle::normalised_for`] stretches each channel's min..max over `[0, 1]`.
    NormalisedChannels { scale: [f32; 3], offset: [f32; 3] },
    /// Channel `channel_idx` as a scalar field coloured by `map` over `range` (`[min, max]`).
    /// NaN shows as [`super::NAN_RGB`].
    Colormap { channel_idx: usize, map: Colormap, range: [f32; 2] },
    /// `|tensor - other|` per pixel at the same frame, reduced over the channels, coloured by
    /// `map` over `range` (`[min, max]`; `[0, 2]` spans pixels in `[-1, 1]`). Both tensors
    /// must have one shape.
    Difference { other: GpuTensor, reduce: DifferenceReduce, map: Colormap, range: [f32; 2] },
}

impl ImageStyle {
    /// [`ImageStyle::NormalisedChannels`] that stretches each of the first three channels of
    /// `tensor` from its minimum (0) to its maximum (1) over every frame, so that the frames
    /// share one scale. A constant or non-finite channel shows as mid-grey.
    #[must_use]
    pub fn normalised_for(tensor: &GpuTensor) -> Self {
        let last_channel_idx = tensor.num_channels() - 1;
        let maps: [(f32, f32); 3] =
            std::array::from_fn(|colour_idx| match tensor.channel_range(colour_idx.min(last_channel_idx)) {
                Some([min, max]) if max > min => (1.0 / (max - min), -min / (max - min)),
                _ => (0.0, 0.5),
            });
        Self::NormalisedChannels {
            scale: maps.map(|(scale, _)| scale),
            offset: maps.map(|(_, offset)| offset),
        }
    }

    /// A short note for the UI on what the colours of a tensor of `num_channels` mean.
    #[must_use]
    pub fn describe(&self, num_channels: usize) -> String {
        match self {
            Self::Wan21Latent => "Wan2.1 latents to RGB (ComfyUI's factors)".to_owned(),
            Self::Wan22Latent => "Wan2.2 latents to RGB (ComfyUI's factors)".to_owned(),
            Self::Pixels => "RGB pixels, (x + 1) / 2".to_owned(),
            Self::NormalisedChannels { .. } => match num_channels {
                1 => "channel 0, normalised".to_owned(),
                2 => "channels 0-1, normalised".to_owned(),
                _ => "channels 0-2, normalised".to_owned(),
            },
            Self::Colormap { channel_idx, map, .. } => {
                format!("channel {channel_idx} through {}", map.label())
            }
            Self::Difference { .. } => "difference through a colormap".to_owned(),
        }
    }

    /// The style Stepscope uses for a tensor by its channel count: Wan2.1 latents for 16,
    /// pixels for 3, otherwise the first channels normalised.
    #[must_use]
    pub fn default_for(tensor: &GpuTensor) -> Self {
        match tensor.num_channels() {
            16 => Self::Wan21Latent,
            48 => Self::Wan22Latent,
            3 => Self::Pixels,
            _ => Self::normalised_for(tensor),
        }
    }
}

/// One image the GPU draws: frame `frame_idx` of a tensor in a style. Built with
/// [`GpuImage::new`], drawn with [`super::paint_image`], or on the CPU with
/// [`super::render_cpu`].
#[derive(Debug, Clone)]
pub struct GpuImage {
    tensor: GpuTensor,
    frame_idx: usize,
    style: ImageStyle,
}

impl GpuImage {
    /// Frame `frame_idx` of `tensor` in `style`; `None` if the frame does not exist, a
    /// colormapped channel does not exist, [`ImageStyle::Wan21Latent`] meets a tensor without
    /// 16 channels, the tensors of [`ImageStyle::Difference`] differ in shape, or a tensor
    /// is frames only (it is drawn through its down-sampled frames).
    #[must_use]
    pub fn new(tensor: GpuTensor, frame_idx: usize, style: ImageStyle) -> Option<Self> {
        let held = !tensor.is_frames_only()
            && !matches!(&style, ImageStyle::Difference { other, .. } if other.is_frames_only());
        let fits = held
            && frame_idx < tensor.num_frames()
            && match &style {
                ImageStyle::Wan21Latent => tensor.num_channels() == 16,
                ImageStyle::Wan22Latent => tensor.num_channels() == 48,
                ImageStyle::Pixels | ImageStyle::NormalisedChannels { .. } => true,
                ImageStyle::Colormap { channel_idx, .. } => *channel_idx < tensor.num_channels(),
                ImageStyle::Difference { other, .. } => other.shape() == tensor.shape(),
            };
        fits.then_some(Self { tensor, frame_idx, style })
    }

    #[must_use]
    pub fn tensor(&self) -> &GpuTensor {
        &self.tensor
    }

    #[must_use]
    pub fn frame_idx(&self) -> usize {
        self.frame_idx
    }

    #[must_use]
    pub fn style(&self) -> &ImageStyle {
        &self.style
    }

    /// `[H, W]`: the image's size in tensor pixels.
    #[must_use]
    pub fn size(&self) -> [usize; 2] {
        self.tensor.frame_size()
    }

    /// The tensors the GPU needs: this one, and for a difference the other.
    pub(super) fn tensors(&self) -> impl Iterator<Item = &GpuTensor> {
        let other = match &self.style {
            ImageStyle::Difference { other, .. } => Some(other),
            _ => None,
        };
        std::iter::once(&self.tensor).chain(other)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "min/max and 1 / range of small integers are exact")]
mod tests {
    use super::*;

    fn ramp(shape: [usize; 4]) -> GpuTensor {
        let len = shape.iter().product::<usize>();
        GpuTensor::new(ImageKey(7), (0..len).map(|v| v as f32).collect::<Vec<_>>(), shape).unwrap()
    }

    #[test]
    fn a_tensor_needs_a_shape_that_matches_its_values() {
        assert!(GpuTensor::new(ImageKey(0), vec![0.0; 6], [1, 1, 2, 3]).is_some());
        assert!(GpuTensor::new(ImageKey(0), vec![0.0; 5], [1, 1, 2, 3]).is_none());
        assert!(GpuTensor::new(ImageKey(0), Vec::new(), [0, 1, 2, 3]).is_none());
        assert!(GpuTensor::new(ImageKey(0), vec![0.0; 6], [usize::MAX, 2, 1, 3]).is_none());
    }

    #[test]
    fn planes_index_c_f_h_w() {
        // [C=2, F=3, H=1, W=2]: channel 1, frame 2 starts at (1 * 3 + 2) * 2 = 10.
        let tensor = ramp([2, 3, 1, 2]);
        assert_eq!(tensor.plane(1, 2), [10.0, 11.0]);
        assert_eq!(tensor.channel_range(1), Some([6.0, 11.0]));
        assert_eq!(tensor.channel_range(2), None);
    }

    #[test]
    fn channel_ranges_skip_non_finite_values() {
        let tensor = GpuTensor::scalar_field(ImageKey(0), vec![f32::NAN, 2.0, f32::INFINITY, -1.0], [2, 2]);
        let tensor = tensor.unwrap();
        assert_eq!(tensor.channel_range(0), Some([-1.0, 2.0]));
        let counts = tensor.non_finite();
        assert_eq!(counts, NonFiniteCounts { nan: 1, infinite: 1 });
        assert_eq!(counts.describe(), "1 NaN (drawn magenta) and 1 infinite values (drawn cyan)");
        let all_nan = GpuTensor::scalar_field(ImageKey(0), vec![f32::NAN], [1, 1]).unwrap();
        assert_eq!(all_nan.channel_range(0), None);
    }

    #[test]
    fn images_check_their_style_against_the_tensor() {
        let rgb = ramp([3, 2, 2, 2]);
        assert!(GpuImage::new(rgb.clone(), 1, ImageStyle::Pixels).is_some());
        assert!(GpuImage::new(rgb.clone(), 2, ImageStyle::Pixels).is_none(), "frame out of range");
        assert!(GpuImage::new(rgb.clone(), 0, ImageStyle::Wan21Latent).is_none(), "Wan21 needs 16 channels");
        assert!(GpuImage::new(ramp([16, 1, 1, 1]), 0, ImageStyle::Wan21Latent).is_some());
        let colormap =
            |channel_idx| ImageStyle::Colormap { channel_idx, map: Colormap::Magma, range: [0.0, 1.0] };
        assert!(GpuImage::new(rgb.clone(), 0, colormap(2)).is_some());
        assert!(GpuImage::new(rgb.clone(), 0, colormap(3)).is_none());
        let difference = |other| ImageStyle::Difference {
            other,
            reduce: DifferenceReduce::Max,
            map: Colormap::Magma,
            range: [0.0, 2.0],
        };
        assert!(GpuImage::new(rgb.clone(), 0, difference(rgb.clone())).is_some());
        assert!(GpuImage::new(rgb, 0, difference(ramp([3, 2, 2, 1]))).is_none());
    }

    #[test]
    fn normalising_stretches_each_channel_and_repeats_the_last() {
        // [C=2, F=1, H=1, W=2]: channel 0 spans 0..1, channel 1 spans 2..3.
        let tensor = ramp([2, 1, 1, 2]);
        let ImageStyle::NormalisedChannels { scale, offset } = ImageStyle::normalised_for(&tensor) else {
            panic!("not normalised");
        };
        assert_eq!(scale, [1.0, 1.0, 1.0]);
        assert_eq!(offset, [0.0, -2.0, -2.0]);
        let constant = GpuTensor::image(ImageKey(1), vec![4.0; 2], [1, 1, 2]).unwrap();
        let ImageStyle::NormalisedChannels { scale, offset } = ImageStyle::normalised_for(&constant) else {
            panic!("not normalised");
        };
        assert_eq!((scale, offset), ([0.0; 3], [0.5; 3]));
    }

    #[test]
    fn keys_of_equal_names_are_equal() {
        assert_eq!(ImageKey::of(&("run.safetensors", 0, 5)), ImageKey::of(&("run.safetensors", 0, 5)));
        assert_ne!(ImageKey::of(&("run.safetensors", 0, 5)), ImageKey::of(&("run.safetensors", 0, 6)));
    }
}
