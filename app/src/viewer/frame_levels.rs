//! Frames of a video made ready for drawing at the size they are shown: one frame at a time
//! (only the frames on screen go to the GPU), box-filtered down by a power of two when the view
//! shows fewer screen pixels than the frame has (mip levels, built on the CPU before upload), so
//! that a decoded 81 x 480 x 832 step is never uploaded whole or at full size to show thumbnails.
//! Magnified frames stay at full resolution, drawn nearest-neighbour by the shaders.
//!
//! Frames of a frames-only tensor (one too large to hold, read from the file a frame at a time)
//! and of a large one held in memory (a Wan latent) are read and down-sampled on the loader
//! thread `stepscope-frames`: the view draws the level it has meanwhile (a coarser or finer one
//! of the same frame, else a placeholder) and the thread wakes it when the level is ready, so
//! the UI thread never reads a file.

use std::collections::HashSet;

use crossbeam_channel::{Receiver, Sender};
use egui::load::SizedTexture;
use egui::{TextureFilter, TextureHandle, TextureId, TextureOptions};

use super::gpu::{self, GpuImage, GpuTensor, ImageKey, ImageStyle, render_cpu};
use super::lru::Lru;

/// Frame levels kept at most.
const MAX_ENTRIES: usize = 4096;

/// Bytes of frame levels kept at most (a screenful of full-size decoded frames fits).
const MAX_BYTES: u64 = 256 << 20;

/// Tensors up to this many values (64 MiB of f32, below common storage-binding limits) are
/// drawn whole at full size instead of copied frame by frame: Wan latents of 21 x 60 x 104 are
/// 2.1 M values; a decoded 81 x 480 x 832 video is 97 M.
const WHOLE_TENSOR_MAX_VALUES: usize = 16 << 20;

/// The box size that shows a frame at `pixels_per_texel` screen pixels per tensor pixel: the
/// smallest power of two at which one down-sampled texel covers at least one screen pixel, so
/// nearest-neighbour sampling skips no texel; 1 when the frame is shown at full size or larger.
#[must_use]
pub fn level_factor(pixels_per_texel: f32) -> usize {
    if pixels_per_texel.is_nan() || pixels_per_texel <= 0.0 || pixels_per_texel >= 1.0 {
        return 1;
    }
    let wanted = (1.0 / pixels_per_texel).ceil().min(1_048_576.0) as usize;
    wanted.next_power_of_two()
}

/// Levels of a tensor held in memory with more values than this are made on the loader thread
/// too (the same bound as the tensor cache's reads): eight Layers rows of a Wan latent's 21
/// frames are 168 box filters over 100 K values each, too much for one frame of the UI thread.
const LEVELS_ON_THREAD_ABOVE_VALUES: usize = super::tensor_cache::READ_ON_THREAD_ABOVE_VALUES;

/// Levels waiting for the loader thread at most; more wait for a later frame.
const LEVELS_IN_FLIGHT: usize = 512;

/// Names a level: the tensor, the frame, the box size.
type LevelKey = (ImageKey, usize, usize);

/// Frame `frame_idx` of `tensor` (`[C, F, H, W]`) averaged over `factor` x `factor` boxes, as a
/// `[C, 1, ceil(H / factor), ceil(W / factor)]` tensor named `key`; boxes at the right and
/// bottom edges average the pixels they hold. A box with a NaN or infinity stays non-finite,
/// so bad values still show. An error if the frame does not exist or cannot be read (a
/// corrupt chunk of the file). A frames-only tensor's frame is read from its file here (the
/// loader thread calls this).
pub fn box_filtered_frame(tensor: &GpuTensor, frame_idx: usize, factor: usize, key: ImageKey) -> Level {
    let [channels, frames, height, width] = tensor.shape();
    let planes = tensor
        .read_frame(frame_idx)
        .ok_or_else(|| format!("there is no frame {frame_idx} of {frames}"))??;
    if planes.len() != channels * height * width {
        return Err(format!(
            "frame {frame_idx} read {} values, not {channels} x {height} x {width}",
            planes.len()
        ));
    }
    let factor = factor.max(1);
    let [out_height, out_width] = [height.div_ceil(factor), width.div_ceil(factor)];
    let shape_error = || format!("frame {frame_idx} at 1/{factor} size is too large to draw");
    if factor == 1 {
        return GpuTensor::new(key, planes, [channels, 1, height, width]).ok_or_else(shape_error);
    }
    let mut out = Vec::with_capacity(channels * out_height * out_width);
    let mut sums = vec![0.0_f32; out_width];
    let mut counts = vec![0_u32; out_width];
    for plane in planes.chunks_exact(height * width) {
        for (row_idx, row) in plane.chunks_exact(width).enumerate() {
            for (x, &value) in row.iter().enumerate() {
                sums[x / factor] += value;
                counts[x / factor] += 1;
            }
            if (row_idx + 1) % factor == 0 || row_idx + 1 == height {
                out.extend(sums.iter().zip(&counts).map(|(&sum, &count)| sum / count as f32));
                sums.fill(0.0);
                counts.fill(0);
            }
        }
    }
    GpuTensor::new(key, out, [channels, 1, out_height, out_width]).ok_or_else(shape_error)
}

/// A frame made ready for drawing, or why it could not be.
pub type Level = Result<GpuTensor, String>;

/// In place of a frame that could not be read: a warning-coloured box that says why (on hover,
/// and to screen readers).
fn failed_frame_ui(ui: &egui::Ui, rect: egui::Rect, message: &str) {
    let warn = ui.visuals().warn_fg_color;
    ui.painter().rect_filled(rect, 0.0, warn.gamma_multiply(0.25));
    ui.painter().text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "⚠",
        egui::FontId::proportional(12.0),
        warn,
    );
    let response = ui.interact(
        rect,
        ui.scope_id().with(("failed frame", rect.min.x.to_bits(), rect.min.y.to_bits())),
        egui::Sense::hover(),
    );
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, message));
    response.on_hover_text(message);
}

/// The loader thread and its channels.
struct FrameLoader {
    jobs: Sender<(LevelKey, GpuTensor)>,
    done: Receiver<(LevelKey, Level)>,
}

impl FrameLoader {
    /// Starts `stepscope-frames`; `wake` is called after each level.
    fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (jobs, job_receiver) = crossbeam_channel::bounded::<(LevelKey, GpuTensor)>(LEVELS_IN_FLIGHT);
        let (done_sender, done) = crossbeam_channel::bounded(LEVELS_IN_FLIGHT);
        std::thread::Builder::new().name("stepscope-frames".to_owned()).spawn(move || {
            for (level_key, tensor) in job_receiver {
                let (_, frame_idx, factor) = level_key;
                let level = box_filtered_frame(&tensor, frame_idx, factor, ImageKey::of(&level_key));
                if done_sender.send((level_key, level)).is_err() {
                    return;
                }
                wake();
            }
        })?;
        Ok(Self { jobs, done })
    }
}

/// Down-sampled frames by (tensor, frame, factor), kept in a bounded LRU cache; where the GPU
/// image path is unavailable, also their pictures as textures, rendered on the CPU by the
/// shaders' reference maths ([`render_cpu`]), so both paths show the same colours.
pub struct FrameLevels {
    entries: Lru<LevelKey, Level>,
    textures: Lru<ImageKey, TextureHandle>,
    /// Started for the first frames-only tensor drawn.
    loader: Option<FrameLoader>,
    /// Levels asked of the loader and not back yet.
    pending: HashSet<LevelKey>,
}

impl std::fmt::Debug for FrameLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameLevels")
            .field("levels", &self.entries.len())
            .field("textures", &self.textures.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Default for FrameLevels {
    fn default() -> Self {
        Self {
            entries: Lru::new(MAX_ENTRIES, MAX_BYTES),
            textures: Lru::new(MAX_ENTRIES, MAX_BYTES),
            loader: None,
            pending: HashSet::new(),
        }
    }
}

impl FrameLevels {
    /// Frame `frame_idx` of `tensor` down-sampled by `factor` (see [`box_filtered_frame`]),
    /// computed on first use.
    pub fn get(&mut self, tensor: &GpuTensor, frame_idx: usize, factor: usize) -> Level {
        let cache_key = (tensor.key(), frame_idx, factor);
        if let Some(level) = self.entries.get(&cache_key) {
            return level.clone();
        }
        let level = box_filtered_frame(tensor, frame_idx, factor, ImageKey::of(&cache_key));
        self.keep(cache_key, level.clone());
        level
    }

    fn keep(&mut self, cache_key: LevelKey, level: Level) {
        let bytes = level.as_ref().map_or(0, |level| 4 * level.values().len() as u64);
        self.entries.insert(cache_key, level, bytes);
    }

    /// Takes in the levels the loader thread has made.
    fn take_loaded(&mut self) {
        let Some(loader) = &self.loader else { return };
        let loaded: Vec<_> = loader.done.try_iter().collect();
        for (cache_key, level) in loaded {
            self.pending.remove(&cache_key);
            self.keep(cache_key, level);
        }
    }

    /// The level `factor` of frame `frame_idx`: at once for a small tensor held in memory; for a
    /// large or frames-only one, if the loader thread has made it (else it is asked for, and
    /// `None`).
    fn level(
        &mut self,
        ctx: &egui::Context,
        tensor: &GpuTensor,
        frame_idx: usize,
        factor: usize,
    ) -> Option<Level> {
        if !tensor.is_frames_only() && tensor.values().len() <= LEVELS_ON_THREAD_ABOVE_VALUES {
            return Some(self.get(tensor, frame_idx, factor));
        }
        let cache_key = (tensor.key(), frame_idx, factor);
        if let Some(level) = self.entries.get(&cache_key) {
            return Some(level.clone());
        }
        if self.pending.contains(&cache_key) || frame_idx >= tensor.num_frames() {
            return None;
        }
        if self.loader.is_none() {
            let ctx = ctx.clone();
            self.loader = FrameLoader::spawn(move || ctx.request_repaint()).ok();
        }
        let Some(loader) = &self.loader else {
            // No thread: read here rather than never.
            return Some(self.get(tensor, frame_idx, factor));
        };
        if loader.jobs.try_send((cache_key, tensor.clone())).is_ok() {
            self.pending.insert(cache_key);
        } else {
            ctx.request_repaint_after(std::time::Duration::from_millis(20));
        }
        None
    }

    /// A level of frame `frame_idx` already made at another box size (the nearest first), to
    /// draw while the wanted one loads.
    fn stand_in(&mut self, tensor: &GpuTensor, frame_idx: usize, factor: usize) -> Option<GpuTensor> {
        (1..=6).find_map(|step| {
            let coarser = factor << step;
            let finer = (factor >> step).max(1);
            [finer, coarser].into_iter().filter(|&other| other != factor).find_map(|other| {
                self.entries.get(&(tensor.key(), frame_idx, other)).cloned().and_then(Result::ok)
            })
        })
    }

    /// How many levels the loader thread is still making.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Draws frame `frame_idx` of `tensor` in `style` over `rect` (points), down-sampled to the
    /// size it is shown at: through the GPU when it can draw images, else as a texture rendered
    /// on the CPU with the same colours. Draws nothing for a frame that does not exist; while a
    /// frames-only tensor's level loads, another level of the frame or a placeholder. Returns
    /// whether the frame is drawn at the level it is shown at.
    pub fn paint(
        &mut self,
        ui: &egui::Ui,
        (tensor, frame_idx, style): (&GpuTensor, usize, &ImageStyle),
        rect: egui::Rect,
    ) -> bool {
        self.take_loaded();
        let [_, _, _, width] = tensor.shape();
        let pixels_per_texel = rect.width() / width.max(1) as f32 * ui.ctx().pixels_per_point();
        let factor = level_factor(pixels_per_texel);
        // A small tensor shown at full size is drawn from itself (one upload for all its frames);
        // a large one, or one shown smaller, through per-frame levels.
        let whole =
            !tensor.is_frames_only() && factor == 1 && tensor.values().len() <= WHOLE_TENSOR_MAX_VALUES;
        let (level, is_final) = if whole {
            (Some((tensor.clone(), frame_idx)), true)
        } else {
            match self.level(ui.ctx(), tensor, frame_idx, factor) {
                Some(Ok(level)) => (Some((level, 0)), true),
                Some(Err(message)) => {
                    failed_frame_ui(ui, rect, &message);
                    return true;
                }
                None => (self.stand_in(tensor, frame_idx, factor).map(|level| (level, 0)), false),
            }
        };
        let Some(image) = level.and_then(|(level, frame)| GpuImage::new(level, frame, style.clone())) else {
            if !is_final {
                ui.painter().rect_filled(rect, 0.0, ui.visuals().faint_bg_color);
            }
            return is_final;
        };
        if gpu::is_available(ui.ctx()) {
            gpu::paint_image(ui.painter(), rect, image);
        } else {
            let texture = self.texture(ui.ctx(), &image);
            egui::Image::from_texture(SizedTexture::new(texture, rect.size())).paint_at(ui, rect);
        }
        is_final
    }

    /// `image` (a frame level) as a texture, rendered on the CPU on first use: crisp squares
    /// when magnified.
    fn texture(&mut self, ctx: &egui::Context, image: &GpuImage) -> TextureId {
        let key = image.tensor().key();
        if let Some(texture) = self.textures.get(&key) {
            return texture.id();
        }
        let picture = render_cpu(image);
        let bytes = 4 * picture.pixels.len() as u64;
        let options = TextureOptions { minification: TextureFilter::Linear, ..TextureOptions::NEAREST };
        let texture = ctx.load_texture(format!("frame_level_{}", key.0), picture, options);
        let id = texture.id();
        self.textures.insert(key, texture, bytes);
        id
    }

    /// How many down-sampled frames are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.textures.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "means of small integers are exact")]
mod tests {
    use super::*;

    #[test]
    fn factors_are_powers_of_two_that_cover_a_screen_pixel() {
        assert_eq!(level_factor(3.0), 1);
        assert_eq!(level_factor(1.0), 1);
        assert_eq!(level_factor(0.5), 2);
        assert_eq!(level_factor(0.3), 4, "1 / 0.3 = 3.3: boxes of 4 cover 1.2 screen pixels");
        assert_eq!(level_factor(1.0 / 64.0), 64);
        assert_eq!(level_factor(0.0), 1);
        assert_eq!(level_factor(f32::NAN), 1);
    }

    #[test]
    fn boxes_average_their_pixels_and_keep_the_channels() {
        // [C=2, F=2, H=3, W=3]: frame 1 of channel c holds 100 c + 0..9.
        let mut values = Vec::new();
        for channel_idx in 0..2 {
            values.extend((0..9).map(|v| v as f32 * 1000.0)); // frame 0: other values
            values.extend((0..9).map(|v| (100 * channel_idx + v) as f32));
        }
        let tensor = GpuTensor::new(ImageKey(1), values, [2, 2, 3, 3]).unwrap();
        let level = box_filtered_frame(&tensor, 1, 2, ImageKey(2)).unwrap();
        assert_eq!(level.shape(), [2, 1, 2, 2]);
        // Channel 0: [[0 1 2] [3 4 5] [6 7 8]] -> [[(0+1+3+4)/4, (2+5)/2], [(6+7)/2, 8]].
        assert_eq!(&level.values()[..4], &[2.0, 3.5, 6.5, 8.0]);
        assert_eq!(&level.values()[4..], &[102.0, 103.5, 106.5, 108.0]);
        let full = box_filtered_frame(&tensor, 1, 1, ImageKey(3)).unwrap();
        assert_eq!(full.shape(), [2, 1, 3, 3]);
        assert_eq!(full.values()[9..], (100..109).map(|v| v as f32).collect::<Vec<_>>()[..]);
        assert!(box_filtered_frame(&tensor, 2, 2, ImageKey(4)).is_err());
    }

    #[test]
    fn a_non_finite_pixel_keeps_its_box_non_finite() {
        let tensor = GpuTensor::scalar_field(ImageKey(1), vec![1.0, f32::NAN, 2.0, 3.0], [2, 2]).unwrap();
        let level = box_filtered_frame(&tensor, 0, 2, ImageKey(2)).unwrap();
        assert!(level.values()[0].is_nan());
    }

    #[test]
    fn levels_are_cached_per_frame_and_factor() {
        let tensor = GpuTensor::new(ImageKey(9), vec![1.0; 2 * 4 * 4], [1, 2, 4, 4]).unwrap();
        let mut levels = FrameLevels::default();
        let first = levels.get(&tensor, 1, 2).unwrap();
        assert_eq!(levels.get(&tensor, 1, 2).unwrap().key(), first.key());
        assert_ne!(levels.get(&tensor, 0, 2).unwrap().key(), first.key());
        assert_eq!(levels.len(), 2);
    }

    #[test]
    fn a_frames_only_tensor_is_read_and_down_sampled_on_the_loader_thread() {
        // The sample's x0 read frame by frame from its file, against the whole tensor.
        let document =
            crate::viewer::Document::open(&crate::sample_trajectory_path()).expect("the sample opens");
        let name = stepscope_engine::trajectory::TensorName::x0(0, 3);
        let (shape, read_frame) = document.frame_reader(&name, 0).expect("a file tensor");
        let lazy = GpuTensor::frames_only(ImageKey(1), shape, read_frame).expect("frames only");
        let (values, _) = document.tensor_values(&name).expect("whole");
        let whole = GpuTensor::new(ImageKey(2), values, shape).expect("whole tensor");
        assert!(lazy.is_frames_only() && lazy.values().is_empty());
        assert!(
            GpuImage::new(lazy.clone(), 0, ImageStyle::default_for(&whole)).is_none(),
            "never drawn whole"
        );
        assert!(document.frame_reader(&name, usize::MAX).is_none(), "small tensors are read whole");

        let ctx = egui::Context::default();
        let mut levels = FrameLevels::default();
        assert!(levels.level(&ctx, &lazy, 2, 2).is_none(), "asked of the loader");
        assert_eq!(levels.pending(), 1);
        assert!(levels.level(&ctx, &lazy, 2, 2).is_none(), "asked once");
        assert_eq!(levels.pending(), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let loaded = loop {
            levels.take_loaded();
            if let Some(level) = levels.level(&ctx, &lazy, 2, 2) {
                break level.expect("a level");
            }
            assert!(std::time::Instant::now() < deadline, "the loader never answered");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(levels.pending(), 0);
        let expected = box_filtered_frame(&whole, 2, 2, ImageKey(3)).expect("a level");
        assert_eq!(loaded.shape(), expected.shape());
        assert_eq!(loaded.values(), expected.values());
        // While another box size loads, the loaded one stands in.
        assert!(levels.level(&ctx, &lazy, 2, 4).is_none());
        assert_eq!(levels.stand_in(&lazy, 2, 4).map(|level| level.key()), Some(loaded.key()));
    }
}
