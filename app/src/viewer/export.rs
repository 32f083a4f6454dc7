//! Pictures out: a seed's video over the steps as a contact sheet (one row per step, one column
//! per frame) or an animated GIF (one animation frame per step, the video's frames side by
//! side), coloured exactly as the window colours them (the CPU reference of the shaders), each
//! latent pixel a `scale` x `scale` square.

use std::path::Path;

use anyhow::{Context as _, Result, ensure};
use egui::ColorImage;
use image::{Rgba, RgbaImage};
use stepscope_engine::trajectory::replace_file_with;

use stepscope_engine::analysis::TensorSource;

use super::document::{Document, view_owner};
use super::figure::{Grid, Labels, labelled};
use super::gpu::{GpuImage, GpuTensor, ImageKey, ImageStyle, render_cpu};
use super::step_view::StepView;
use super::tensor_loader::drawable;

/// Points between tiles, in output pixels.
const GAP: u32 = 2;
/// The background between tiles.
const BACKGROUND: Rgba<u8> = Rgba([24, 24, 24, 255]);
/// The largest picture written, in pixels (width times height).
const MAX_PIXELS: u64 = 64 << 20;

/// What to draw: which seed, which tensor, which steps, how large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSpec {
    pub seed_idx: usize,
    pub view: StepView,
    /// The steps, in the order drawn (rows of a sheet, frames of a GIF).
    pub steps: Vec<usize>,
    /// Output pixels per latent pixel.
    pub scale: u32,
    /// One frame of the video only (a step sweep of that frame), or every frame.
    pub frame: Option<usize>,
}

impl SweepSpec {
    /// Every step of `seed_idx` that `document` holds.
    #[must_use]
    pub fn all_steps(document: &Document, seed_idx: usize, view: StepView, scale: u32) -> Self {
        let steps = (0..document.num_steps())
            .filter(|&step| document.view_owner(seed_idx, step, view).is_some())
            .collect();
        Self { seed_idx, view, steps, scale, frame: None }
    }
}

/// One seed's tensors at the steps of a [`SweepSpec`], read from the document, so that the
/// pictures can be drawn anywhere (a worker thread) without it.
#[derive(Debug, Clone)]
pub struct SweepTensors {
    /// `(step_idx, [C, F, H, W])` in drawing order.
    steps: Vec<(usize, GpuTensor)>,
    /// The noise level entering each step of `steps`.
    sigmas: Vec<f64>,
    /// What a figure of them is titled: the file, the seed and the tensor.
    title: String,
    scale: u32,
    /// The one frame drawn, or every frame.
    frame: Option<usize>,
}

impl SweepTensors {
    /// Reads the tensors `spec` asks for from `source` (a file's reader, or a live run's
    /// snapshot: on any thread), to draw under `title` (the document's); an error (before the
    /// other steps are read) if the contact sheet of them would be larger than the largest
    /// picture written.
    pub fn load(source: &dyn TensorSource, title: &str, spec: &SweepSpec) -> Result<Self> {
        ensure!(
            !spec.steps.is_empty(),
            "no steps to draw: seed {} has no {} at any step",
            spec.seed_idx,
            spec.view.label()
        );
        let mut steps = Vec::with_capacity(spec.steps.len());
        for &step_idx in &spec.steps {
            let owner =
                view_owner(source.manifest(), spec.seed_idx, step_idx, spec.view).with_context(|| {
                    format!("seed {} has no {} at step {step_idx}", spec.seed_idx, spec.view.label())
                })?;
            let name = spec.view.tensor_name(owner, step_idx);
            let tensor = source.load_tensor(&name).with_context(|| format!("reading {name}"))?;
            let dims = tensor.dims().to_vec();
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            let tensor = drawable(name, values, &dims, ImageKey::of(&name)).map_err(anyhow::Error::msg)?;
            if steps.is_empty() {
                let [_, frames, h, w] = tensor.shape();
                if let Some(frame) = spec.frame {
                    ensure!(frame < frames, "the video has {frames} frames; there is no frame {frame}");
                }
                let columns = if spec.frame.is_some() { 1 } else { frames };
                canvas_size(columns, spec.steps.len(), [w, h], spec.scale)?;
            }
            steps.push((step_idx, tensor));
        }
        let schedule = &source.manifest().schedule.sigmas;
        let sigmas = spec.steps.iter().map(|&step| schedule.get(step).copied().unwrap_or(f64::NAN)).collect();
        let title = format!("{title}: seed {}, {}", spec.seed_idx, spec.view.label());
        Ok(Self { steps, sigmas, title, scale: spec.scale, frame: spec.frame })
    }

    /// One line per step that holds NaN or infinite values ("step 3: 12 NaN values (drawn
    /// magenta)"), so that a picture with bad numbers never goes out unflagged.
    #[must_use]
    pub fn non_finite_warnings(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|(_, tensor)| tensor.non_finite().any())
            .map(|(step_idx, tensor)| format!("step {step_idx}: {}", tensor.non_finite().describe()))
            .collect()
    }

    /// Frames drawn per step: one with a chosen frame, else the video's (which for a decoded
    /// video is not the latent's count).
    #[must_use]
    pub fn num_frames(&self) -> usize {
        if self.frame.is_some() {
            return 1;
        }
        self.steps.first().map_or(0, |(_, tensor)| tensor.num_frames())
    }
}

/// A step's frames as pictures: `frame` only, or one per video frame.
fn step_frames((step_idx, tensor): &(usize, GpuTensor), frame: Option<usize>) -> Result<Vec<ColorImage>> {
    let style = ImageStyle::default_for(tensor);
    let frames = match frame {
        Some(frame_idx) => frame_idx..frame_idx + 1,
        None => 0..tensor.num_frames(),
    };
    frames
        .map(|frame_idx| {
            let image = GpuImage::new(tensor.clone(), frame_idx, style.clone())
                .with_context(|| format!("step {step_idx}: frame {frame_idx} cannot be drawn"))?;
            Ok(render_cpu(&image))
        })
        .collect()
}

/// Draws `tile` at `(x, y)` of `canvas`, each pixel a `scale` x `scale` square.
fn blit(canvas: &mut RgbaImage, tile: &ColorImage, (x, y): (u32, u32), scale: u32) {
    let [width, height] = tile.size;
    for (pixel_idx, colour) in tile.pixels.iter().enumerate() {
        let (tx, ty) = ((pixel_idx % width) as u32, (pixel_idx / width) as u32);
        debug_assert!(ty < height as u32);
        let rgba = Rgba(colour.to_array());
        for dy in 0..scale {
            for dx in 0..scale {
                canvas.put_pixel(x + tx * scale + dx, y + ty * scale + dy, rgba);
            }
        }
    }
}

/// A canvas for `columns` x `rows` tiles of `[w, h]` latent pixels; an error if it would be
/// larger than [`MAX_PIXELS`].
fn canvas(columns: usize, rows: usize, tile: [usize; 2], scale: u32) -> Result<RgbaImage> {
    let (width, height) = canvas_size(columns, rows, tile, scale)?;
    Ok(RgbaImage::from_pixel(width, height, BACKGROUND))
}

/// The `(width, height)` of [`canvas`]; an error if it would be larger than [`MAX_PIXELS`].
fn canvas_size(columns: usize, rows: usize, [w, h]: [usize; 2], scale: u32) -> Result<(u32, u32)> {
    ensure!(scale >= 1, "the scale must be at least 1");
    let side = |count: usize, tile: usize| -> Option<u32> {
        let count = u32::try_from(count).ok()?;
        let tile = u32::try_from(tile).ok()?.checked_mul(scale)?;
        count.checked_mul(tile)?.checked_add(count.saturating_sub(1) * GAP)
    };
    let (width, height) = side(columns, w).zip(side(rows, h)).context("the picture would be too large")?;
    ensure!(
        u64::from(width) * u64::from(height) <= MAX_PIXELS,
        "the picture would be {width} x {height} pixels; use a smaller --scale or fewer steps"
    );
    Ok((width, height))
}

pub fn contact_sheet(tensors: &SweepTensors) -> Result<RgbaImage> {
    let rows: Vec<Vec<ColorImage>> =
        tensors.steps.iter().map(|step| step_frames(step, tensors.frame)).collect::<Result<_>>()?;
    let frames = rows[0].len();
    let size = rows[0].first().context("the video has no frames")?.size;
    let scale = tensors.scale;
    let mut sheet = canvas(frames, rows.len(), size, scale)?;
    let pitch = |tile: usize| tile as u32 * scale + GAP;
    for (row_idx, row) in rows.iter().enumerate() {
        for (frame_idx, tile) in row.iter().enumerate() {
            blit(
                &mut sheet,
                tile,
                (frame_idx as u32 * pitch(size[0]), row_idx as u32 * pitch(size[1])),
                scale,
            );
        }
    }
    Ok(sheet)
}

/// The contact sheet as a figure: titled with the file, seed and tensor, each row labelled with
/// its step and sigma, each column with its frame.
pub fn contact_sheet_figure(tensors: &SweepTensors) -> Result<RgbaImage> {
    let sheet = contact_sheet(tensors)?;
    let (_, first) = tensors.steps.first().context("no steps to draw")?;
    let [_, _, height, width] = first.shape();
    let tile = [width as u32 * tensors.scale, height as u32 * tensors.scale];
    let frames: Vec<usize> = match tensors.frame {
        Some(frame_idx) => vec![frame_idx],
        None => (0..first.num_frames()).collect(),
    };
    let labels = Labels {
        title: tensors.title.clone(),
        columns: frames.iter().map(|frame_idx| format!("frame {frame_idx}")).collect(),
        rows: tensors
            .steps
            .iter()
            .zip(&tensors.sigmas)
            .map(|((step_idx, _), sigma)| format!("step {step_idx}\nσ {sigma:.3}"))
            .collect(),
        column_axis: None,
        row_axis: None,
        colour_bar: None,
    };
    let grid = Grid { columns: frames.len(), rows: tensors.steps.len(), tile, gap: GAP };
    labelled(&sheet, grid, &labels)
}

/// One animation frame per step (the video's frames side by side), `delay_ms` apart, looping.
pub fn step_sweep_gif(tensors: &SweepTensors, delay_ms: u32) -> Result<Vec<u8>> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let scale = tensors.scale;
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite)?;
        for step in &tensors.steps {
            let frames = step_frames(step, tensors.frame)?;
            let size = frames.first().context("the video has no frames")?.size;
            let mut picture = canvas(frames.len(), 1, size, scale)?;
            for (frame_idx, tile) in frames.iter().enumerate() {
                blit(&mut picture, tile, (frame_idx as u32 * (size[0] as u32 * scale + GAP), 0), scale);
            }
            let delay = image::Delay::from_numer_denom_ms(delay_ms, 1);
            encoder.encode_frame(image::Frame::from_parts(picture, 0, 0, delay))?;
        }
    }
    Ok(bytes)
}

/// Writes `sheet` as a PNG at `path`, atomically.
pub fn write_png(path: &Path, picture: &RgbaImage) -> Result<()> {
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    replace_file_with(path, &png)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_scaled_and_spaced() {
        let tile = ColorImage::new([2, 1], vec![egui::Color32::RED, egui::Color32::BLUE]);
        let mut sheet = canvas(2, 1, [2, 1], 3).unwrap();
        assert_eq!(sheet.dimensions(), (2 * 6 + GAP, 3));
        blit(&mut sheet, &tile, (6 + GAP, 0), 3);
        assert_eq!(sheet.get_pixel(6 + GAP + 2, 2), &Rgba([255, 0, 0, 255]));
        assert_eq!(sheet.get_pixel(6 + GAP + 3, 0), &Rgba([0, 0, 255, 255]));
        assert_eq!(sheet.get_pixel(0, 0), &BACKGROUND);
    }

    #[test]
    fn oversized_pictures_are_refused_before_allocating() {
        let err = canvas(100_000, 100_000, [64, 64], 8).unwrap_err();
        assert!(format!("{err:#}").contains("too large") || format!("{err:#}").contains("smaller --scale"));
    }
}
