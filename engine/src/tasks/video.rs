//! A small RGB video as plain values, the currency of generators and scorers.
use candle_core::{DType, Device, Tensor};

use super::error::{Result, TaskError};
use super::palette::Color;

/// A video `[3, F, H, W]` in row-major order, values in `[-1, 1]` (white = +1): the pixel-space
/// layout of one sample of the model. Frame 0 is the puzzle, the last frame the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskVideo {
    shape: [usize; 4],
    values: Vec<f32>,
}

impl TaskVideo {
    /// A video of `frames` frames of `height x width` pixels, all `color`.
    #[must_use]
    pub fn filled(frames: usize, height: usize, width: usize, color: Color) -> Self {
        let mut values = Vec::with_capacity(3 * frames * height * width);
        for channel_value in color.signed() {
            values.extend(std::iter::repeat_n(channel_value, frames * height * width));
        }
        Self { shape: [3, frames, height, width], values }
    }

    /// Wraps `values` laid out as `shape` (`[3, F, H, W]`, F, H, W >= 1).
    pub fn from_values(shape: [usize; 4], values: Vec<f32>) -> Result<Self> {
        let [channels, frames, height, width] = shape;
        if channels != 3 || frames == 0 || height == 0 || width == 0 {
            return Err(TaskError::Shape(format!("{shape:?}")));
        }
        if values.len() != 3 * frames * height * width {
            return Err(TaskError::Shape(format!("{shape:?} with {} values", values.len())));
        }
        Ok(Self { shape, values })
    }

    /// Reads a `[3, F, H, W]` tensor (any float dtype, any device).
    pub fn from_tensor(tensor: &Tensor) -> Result<Self> {
        let dims = tensor.dims();
        let shape: [usize; 4] = dims.try_into().map_err(|_| TaskError::Shape(format!("{dims:?}")))?;
        let values = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Self::from_values(shape, values)
    }

    /// The video as an f32 tensor `[3, F, H, W]` on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.values, self.shape.as_slice(), device)?)
    }

    /// `[3, F, H, W]`.
    #[must_use]
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The values in `[3, F, H, W]` row-major order.
    #[must_use]
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// F.
    #[must_use]
    pub fn frames(&self) -> usize {
        self.shape[1]
    }

    /// H, in pixels.
    #[must_use]
    pub fn height(&self) -> usize {
        self.shape[2]
    }

    /// W, in pixels.
    #[must_use]
    pub fn width(&self) -> usize {
        self.shape[3]
    }

    fn index(&self, channel: usize, frame_idx: usize, y: usize, x: usize) -> usize {
        let [_, frames, height, width] = self.shape;
        ((channel * frames + frame_idx) * height + y) * width + x
    }

    /// The RGB of pixel `(y, x)` of frame `frame_idx`.
    #[must_use]
    pub fn pixel(&self, frame_idx: usize, y: usize, x: usize) -> [f32; 3] {
        [0, 1, 2].map(|channel| self.values[self.index(channel, frame_idx, y, x)])
    }

    /// Paints pixel `(y, x)` of frame `frame_idx`.
    pub fn set_pixel(&mut self, frame_idx: usize, y: usize, x: usize, color: Color) {
        for (channel, value) in color.signed().into_iter().enumerate() {
            let idx = self.index(channel, frame_idx, y, x);
            self.values[idx] = value;
        }
    }

    /// Frame `frame_idx` repeated `frames` times: "the first frame copied forward" when
    /// `frame_idx` is 0.
    #[must_use]
    pub fn repeat_frame(&self, frame_idx: usize, frames: usize) -> Self {
        let [_, _, height, width] = self.shape;
        let plane = height * width;
        let mut values = Vec::with_capacity(3 * frames * plane);
        for channel in 0..3 {
            let start = self.index(channel, frame_idx, 0, 0);
            for _ in 0..frames {
                values.extend_from_slice(&self.values[start..start + plane]);
            }
        }
        Self { shape: [3, frames, height, width], values }
    }

    /// Stacks one-frame-or-more videos of equal size along the frame axis.
    pub fn concat(parts: &[Self]) -> Result<Self> {
        let Some(first) = parts.first() else {
            return Err(TaskError::Shape("no frames to stack".to_owned()));
        };
        let [_, _, height, width] = first.shape;
        if let Some(odd) = parts.iter().find(|part| part.height() != height || part.width() != width) {
            return Err(TaskError::Shape(format!("{:?} among {:?}", odd.shape, first.shape)));
        }
        let frames: usize = parts.iter().map(Self::frames).sum();
        let mut values = Vec::with_capacity(3 * frames * height * width);
        for channel in 0..3 {
            for part in parts {
                let start = part.index(channel, 0, 0, 0);
                values.extend_from_slice(&part.values[start..start + part.frames() * height * width]);
            }
        }
        Ok(Self { shape: [3, frames, height, width], values })
    }
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "the generators paint exact palette values")]
mod tests {
    use super::*;

    #[test]
    fn pixels_round_trip_through_a_tensor() {
        let mut video = TaskVideo::filled(2, 4, 6, Color::White);
        video.set_pixel(1, 3, 5, Color::Orange);
        let tensor = video.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(tensor.dims(), &[3, 2, 4, 6]);
        let back = TaskVideo::from_tensor(&tensor).unwrap();
        assert_eq!(back, video);
        assert_eq!(back.pixel(1, 3, 5), Color::Orange.signed());
        assert_eq!(back.pixel(0, 3, 5), Color::White.signed());
    }

    #[test]
    fn frames_repeat_and_stack() {
        let mut video = TaskVideo::filled(3, 2, 2, Color::White);
        video.set_pixel(0, 0, 1, Color::Red);
        let copied = video.repeat_frame(0, 4);
        assert_eq!(copied.shape(), [3, 4, 2, 2]);
        assert!((0..4).all(|frame_idx| copied.pixel(frame_idx, 0, 1) == Color::Red.signed()));
        let stacked = TaskVideo::concat(&[video.repeat_frame(0, 1), video.repeat_frame(2, 1)]).unwrap();
        assert_eq!(stacked.pixel(0, 0, 1), Color::Red.signed());
        assert_eq!(stacked.pixel(1, 0, 1), Color::White.signed());
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(TaskVideo::from_values([1, 1, 2, 2], vec![0.0; 4]).is_err());
        assert!(TaskVideo::from_values([3, 1, 2, 2], vec![0.0; 11]).is_err());
        let tensor = Tensor::zeros((3, 2, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(TaskVideo::from_tensor(&tensor).is_err());
    }
}
