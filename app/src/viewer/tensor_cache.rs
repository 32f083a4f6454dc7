//! Tensors the views draw, read once from the document and kept (as values for the GPU and for
//! hover read-outs) in a bounded LRU cache (by count and bytes, so that a few decoded 480p videos
//! do not fill the memory). Each load gets a fresh GPU key, so a tensor that changes (a live run
//! rewound and stepped again) is never drawn from a stale upload.
//!
//! A file's tensor of more than [`READ_ON_THREAD_ABOVE_VALUES`] values is read on the
//! `stepscope-tensors` thread ([`super::tensor_loader`]): the view gets [`NoTensor::Reading`]
//! and draws a placeholder until it arrives, so the UI thread never waits on a read.

use std::collections::{HashMap, HashSet};
use std::fmt;

use stepscope_engine::trajectory::TensorName;

use super::document::Document;
use super::gpu::{GpuTensor, ImageKey};
use super::lru::Lru;
use super::tensor_loader::{TensorDone, TensorJob, TensorLoader, drawable, largest_abs_difference};

/// How many tensors stay loaded: a 50-step x 4-seed run's captures of a few layers fit.
const CAPACITY: usize = 1024;

/// Bytes of tensor values kept at most (the newest tensor stays even if it alone is larger).
const MAX_BYTES: u64 = 1 << 30;

/// A file's tensor with more values than this is not read whole to be drawn: it is kept frames
/// only, each frame read (and down-sampled) when shown. Wan latents (16 x 21 x 60 x 104, 2.1 M
/// values) are read whole; a decoded 81 x 480 x 832 video (97 M values, 388 MB as f32) is not.
pub const FRAMES_ONLY_ABOVE_VALUES: usize = 16 << 20;

/// Tensors with more values than this are read, and measured, on the `stepscope-tensors`
/// thread; smaller ones (a maze run's, read in well under a millisecond) at once. 256 Ki values
/// is 1 MiB of f32: a Wan latent (2.1 M values) goes to the thread.
pub const READ_ON_THREAD_ABOVE_VALUES: usize = 1 << 18;

/// Largest differences remembered (one per pair of tensors compared).
const DIFFERENCES_KEPT: usize = 4096;

/// Why a view has no tensor to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTensor {
    /// Being read on the `stepscope-tensors` thread, which repaints the window when done.
    Reading,
    /// There is none, with the reason in a sentence.
    Missing(String),
}

impl From<String> for NoTensor {
    fn from(message: String) -> Self {
        Self::Missing(message)
    }
}

impl fmt::Display for NoTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reading => f.write_str("reading…"),
            Self::Missing(message) => f.write_str(message),
        }
    }
}

impl NoTensor {
    /// A spinner while reading, else the reason in the warning colour.
    pub fn show(&self, ui: &mut egui::Ui) {
        match self {
            Self::Reading => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak("reading…");
                });
            }
            Self::Missing(message) => {
                ui.colored_label(ui.visuals().warn_fg_color, message);
            }
        }
    }
}

/// Loaded tensors (or why they could not be) by name. Cleared when another document opens.
#[derive(Debug)]
pub struct TensorCache {
    entries: Lru<TensorName, Result<GpuTensor, String>>,
    /// Counts loads, so each gets its own GPU key.
    loads: u64,
    /// The largest finite `|a - b|` of pairs of tensors, by their keys.
    differences: Lru<(ImageKey, ImageKey), f32>,
    /// Started for the first tensor read on a thread.
    loader: Option<TensorLoader>,
    /// Reads on the thread, with the key each will carry (a read whose name was forgotten, or
    /// asked again since, is dropped when it arrives).
    reading: HashMap<TensorName, ImageKey>,
    /// Pairs whose largest difference the thread is measuring.
    measuring: HashSet<(ImageKey, ImageKey)>,
    /// Tensors with more values go to the thread ([`READ_ON_THREAD_ABOVE_VALUES`]; lower in
    /// tests, so that a maze file exercises the thread).
    thread_above: usize,
}

impl Default for TensorCache {
    fn default() -> Self {
        Self {
            entries: Lru::new(CAPACITY, MAX_BYTES),
            loads: 0,
            differences: Lru::new(DIFFERENCES_KEPT, u64::MAX),
            loader: None,
            reading: HashMap::new(),
            measuring: HashSet::new(),
            thread_above: READ_ON_THREAD_ABOVE_VALUES,
        }
    }
}

impl TensorCache {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.differences.clear();
        self.reading.clear();
        self.measuring.clear();
    }

    /// How many tensors are loaded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many reads and measurements the thread has still to send back.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.reading.len() + self.measuring.len()
    }

    /// Forgets the tensors `stale` picks (and drops their reads in flight when they arrive).
    pub fn forget(&mut self, stale: impl Fn(&TensorName) -> bool) {
        self.entries.retain(|name| !stale(name));
        self.reading.retain(|name, _| !stale(name));
    }

    /// The tensor `name` as `[C, F, H, W]` (a rank-3 tensor `[F, H, W]` gains `C = 1`), read
    /// from `document` on first use: a file's tensor above [`FRAMES_ONLY_ABOVE_VALUES`] values
    /// is frames only (nothing read until a frame is drawn); one above
    /// [`READ_ON_THREAD_ABOVE_VALUES`] is read on the thread ([`NoTensor::Reading`] until then).
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        document: &Document,
        name: TensorName,
    ) -> Result<GpuTensor, NoTensor> {
        self.take_finished();
        if self.entries.get(&name).is_none() {
            if self.reading.contains_key(&name) {
                return Err(NoTensor::Reading);
            }
            let key = self.next_key(name);
            if let Some((shape, read_frame)) = document.frame_reader(&name, FRAMES_ONLY_ABOVE_VALUES) {
                let tensor = GpuTensor::frames_only(key, shape, read_frame)
                    .ok_or_else(|| format!("{name} has an empty shape {shape:?}"));
                self.entries.insert(name, tensor, 0);
            } else if let Some(reader) = document.file_reader()
                && reader
                    .shape_of(&name)
                    .is_some_and(|dims| dims.iter().product::<usize>() > self.thread_above)
            {
                let job = TensorJob::Read { name, key, reader: std::sync::Arc::clone(reader) };
                if self.loader(ctx).is_some_and(|loader| loader.queue(job)) {
                    self.reading.insert(name, key);
                } else {
                    // The queue is full (or no thread): ask again in a moment.
                    ctx.request_repaint_after(std::time::Duration::from_millis(20));
                }
                return Err(NoTensor::Reading);
            } else {
                let loaded = load(document, name, key);
                self.keep(name, loaded);
            }
        }
        match self.entries.get(&name) {
            Some(Ok(tensor)) => Ok(tensor.clone()),
            Some(Err(message)) => Err(NoTensor::Missing(message.clone())),
            None => Err(NoTensor::Missing("the tensor cache lost the tensor it just read".to_owned())),
        }
    }

    /// The largest finite `|a - b|` over the values of `a` and `b` (the colour range of their
    /// difference): at once for small tensors, else measured on the thread (`None` until then).
    pub fn largest_difference(&mut self, ctx: &egui::Context, a: &GpuTensor, b: &GpuTensor) -> Option<f32> {
        self.take_finished();
        let keys = (a.key(), b.key());
        if let Some(&largest) = self.differences.get(&keys) {
            return Some(largest);
        }
        if self.measuring.contains(&keys) {
            return None;
        }
        if a.values().len() <= self.thread_above {
            let largest = largest_abs_difference(a, b);
            self.differences.insert(keys, largest, 1);
            return Some(largest);
        }
        let job = TensorJob::LargestDifference { a: a.clone(), b: b.clone() };
        if self.loader(ctx).is_some_and(|loader| loader.queue(job)) {
            self.measuring.insert(keys);
        } else {
            ctx.request_repaint_after(std::time::Duration::from_millis(20));
        }
        None
    }

    fn next_key(&mut self, name: TensorName) -> ImageKey {
        self.loads += 1;
        ImageKey::of(&(name, self.loads))
    }

    fn keep(&mut self, name: TensorName, loaded: Result<GpuTensor, String>) {
        let bytes = loaded.as_ref().map_or(0, |tensor| 4 * tensor.values().len() as u64);
        self.entries.insert(name, loaded, bytes);
    }

    /// The thread, started on first use; `None` if it could not be started.
    fn loader(&mut self, ctx: &egui::Context) -> Option<&TensorLoader> {
        if self.loader.is_none() {
            let ctx = ctx.clone();
            self.loader = TensorLoader::spawn(move || ctx.request_repaint()).ok();
        }
        self.loader.as_ref()
    }

    /// Takes in what the thread has finished (also done by every read, so that the app calls
    /// it once a frame only to keep [`Self::pending`] true while no view reads).
    pub fn take_finished(&mut self) {
        let Some(loader) = &self.loader else { return };
        let finished: Vec<TensorDone> = loader.finished().collect();
        for done in finished {
            match done {
                TensorDone::Read { name, key, tensor } => {
                    if self.reading.get(&name) == Some(&key) {
                        self.reading.remove(&name);
                        self.keep(name, tensor);
                    }
                }
                TensorDone::LargestDifference { keys, largest } => {
                    if self.measuring.remove(&keys) {
                        self.differences.insert(keys, largest, 1);
                    }
                }
            }
        }
    }
}

/// Reads `name` from `document` here, as a drawable `[C, F, H, W]` tensor named `key` (an
/// `[F, H, W]` tensor gets one channel).
fn load(document: &Document, name: TensorName, key: ImageKey) -> Result<GpuTensor, String> {
    let (values, dims) = document.tensor_values(&name).map_err(|err| format!("{err:#}"))?;
    drawable(name, values, &dims, key)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use stepscope_engine::trajectory::StepTensor;

    use super::*;

    /// A cache that reads every tensor of the sample (maze) file on the thread.
    fn threaded_cache() -> TensorCache {
        TensorCache { thread_above: 0, ..TensorCache::default() }
    }

    fn x0(step_idx: usize) -> TensorName {
        TensorName::Step { seed_idx: 0, step_idx, kind: StepTensor::X0 }
    }

    /// Asks for `name` until the thread has read it (10 s at most).
    fn wait_for(
        cache: &mut TensorCache,
        ctx: &egui::Context,
        document: &Document,
        name: TensorName,
    ) -> GpuTensor {
        let start = Instant::now();
        loop {
            match cache.get(ctx, document, name) {
                Ok(tensor) => return tensor,
                Err(NoTensor::Reading) => assert!(start.elapsed() < Duration::from_secs(10), "never read"),
                Err(NoTensor::Missing(message)) => panic!("{message}"),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_tensor_read_on_the_thread_equals_one_read_here_and_is_read_once() {
        let (ctx, document) =
            (egui::Context::default(), Document::open(&crate::sample_trajectory_path()).unwrap());
        let mut cache = threaded_cache();
        assert_eq!(cache.get(&ctx, &document, x0(2)).unwrap_err(), NoTensor::Reading);
        assert_eq!(cache.pending(), 1);
        let tensor = wait_for(&mut cache, &ctx, &document, x0(2));
        let (values, _) = document.tensor_values(&x0(2)).unwrap();
        assert_eq!(tensor.values(), values.as_slice());
        assert_eq!(cache.pending(), 0);
        let again = cache.get(&ctx, &document, x0(2)).unwrap();
        assert_eq!(again.key(), tensor.key(), "kept, not read again");
        let missing = TensorName::Step { seed_idx: 99, step_idx: 0, kind: StepTensor::X0 };
        assert!(matches!(cache.get(&ctx, &document, missing), Err(NoTensor::Missing(_))), "not in the file");
    }

    #[test]
    fn a_read_forgotten_in_flight_is_dropped_when_it_arrives() {
        let (ctx, document) =
            (egui::Context::default(), Document::open(&crate::sample_trajectory_path()).unwrap());
        let mut cache = threaded_cache();
        assert_eq!(cache.get(&ctx, &document, x0(1)).unwrap_err(), NoTensor::Reading);
        cache.forget(|name| *name == x0(1));
        assert_eq!(cache.pending(), 0);
        // The stale result arrives and is dropped; a new read is asked for.
        std::thread::sleep(Duration::from_millis(50));
        cache.take_finished();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.get(&ctx, &document, x0(1)).unwrap_err(), NoTensor::Reading);
        wait_for(&mut cache, &ctx, &document, x0(1));
    }

    #[test]
    fn the_largest_difference_measured_on_the_thread_is_the_largest_finite_one() {
        let (ctx, document) =
            (egui::Context::default(), Document::open(&crate::sample_trajectory_path()).unwrap());
        let mut cache = threaded_cache();
        let a = wait_for(&mut cache, &ctx, &document, x0(0));
        let b = wait_for(&mut cache, &ctx, &document, x0(5));
        let expected = a.values().iter().zip(b.values()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(expected > 0.0, "steps 0 and 5 differ");
        let start = Instant::now();
        let largest = loop {
            if let Some(largest) = cache.largest_difference(&ctx, &a, &b) {
                break largest;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "never measured");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!((largest - expected).abs() <= f32::EPSILON * expected, "{largest} vs {expected}");
        // Remembered: asked again, it is there at once.
        assert_eq!(cache.largest_difference(&ctx, &a, &b), Some(largest));
    }
}
