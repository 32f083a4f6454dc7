//! An image-to-video run's first frame: an image file read, brought to the video's size and
//! scaled to `[-1, 1]` as diffusers' video processor prepares `image`.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::imageops::FilterType;

/// The image at `path` as a one-frame video `[3, 1, height, width]` in `[-1, 1]` (f32). An
/// image of another size is resized with a Lanczos filter (as diffusers' default, though not
/// bit for bit PIL's); one of the right size is used as it is.
pub fn load_first_frame(path: &Path, [height, width]: [usize; 2], device: &Device) -> Result<Tensor> {
    let decoded = image::ImageReader::open(path)
        .with_context(|| format!("reading the image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading the image {}", path.display()))?
        .decode()
        .with_context(|| format!("{} is not an image Stepscope reads (PNG, JPEG or GIF)", path.display()))?
        .to_rgb8();
    let (w, h) = (u32::try_from(width)?, u32::try_from(height)?);
    let rgb = if decoded.dimensions() == (w, h) {
        decoded
    } else {
        image::imageops::resize(&decoded, w, h, FilterType::Lanczos3)
    };
    // [H, W, 3] bytes to [3, 1, H, W] in [-1, 1].
    let values: Vec<f32> =
        rgb.into_raw().into_iter().map(|byte| f32::from(byte) / 255.0 * 2.0 - 1.0).collect();
    Ok(Tensor::from_vec(values, (height, width, 3), device)?
        .permute((2, 0, 1))?
        .unsqueeze(1)?
        .contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_become_values_in_minus_one_to_one_in_channel_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.png");
        let mut image = image::RgbImage::new(2, 1);
        image.put_pixel(0, 0, image::Rgb([255, 0, 51]));
        image.put_pixel(1, 0, image::Rgb([0, 255, 102]));
        image.save(&path).unwrap();
        let frame = load_first_frame(&path, [1, 2], &Device::Cpu).unwrap();
        assert_eq!(frame.dims(), [3, 1, 1, 2]);
        let values = frame.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = [1.0, -1.0, -1.0, 1.0, 0.2 * 2.0 - 1.0, 0.4 * 2.0 - 1.0];
        for (value, expected) in values.iter().zip(expected) {
            assert!((value - expected).abs() < 1e-6, "{values:?}");
        }
        let resized = load_first_frame(&path, [4, 6], &Device::Cpu).unwrap();
        assert_eq!(resized.dims(), [3, 1, 4, 6]);
        let err = load_first_frame(&dir.path().join("none.png"), [1, 2], &Device::Cpu).unwrap_err();
        assert!(format!("{err:#}").contains("none.png"), "{err:#}");
    }
}
