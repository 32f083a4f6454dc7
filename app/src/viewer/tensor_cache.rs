//! Tensors the views draw, read once from the document and kept (as values for the GPU and for
//! hover read-outs) in a bounded LRU cache (by count and bytes, so that a few decoded 480p videos
//! do not fill the memory). Each load gets a fresh GPU key, so a tensor that changes (a live run
//! rewound and stepped again) is never drawn from a stale upload.

use stepscope_engine::trajectory::TensorName;

use super::document::Document;
use super::gpu::{GpuTensor, ImageKey};
use super::lru::Lru;

/// How many tensors stay loaded: a 50-step x 4-seed run's captures of a few layers fit.
const CAPACITY: usize = 1024;

/// Bytes of tensor values kept at most (the newest tensor stays even if it alone is larger).
const MAX_BYTES: u64 = 1 << 30;

/// A file's tensor with more values than this is not read whole to be drawn: it is kept frames
/// only, each frame read (and down-sampled) when shown. Wan latents (16 x 21 x 60 x 104, 2.1 M
/// values) are read whole; a decoded 81 x 480 x 832 video (97 M values, 388 MB as f32) is not.
pub const FRAMES_ONLY_ABOVE_VALUES: usize = 16 << 20;

/// Loaded tensors (or why they could not be) by name. Cleared when another document opens.
#[derive(Debug)]
pub struct TensorCache {
    entries: Lru<TensorName, Result<GpuTensor, String>>,
    /// Counts loads, so each gets its own GPU key.
    loads: u64,
}

impl Default for TensorCache {
    fn default() -> Self {
        Self { entries: Lru::new(CAPACITY, MAX_BYTES), loads: 0 }
    }
}

impl TensorCache {
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many tensors are loaded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets the tensors `stale` picks.
    pub fn forget(&mut self, stale: impl Fn(&TensorName) -> bool) {
        self.entries.retain(|name| !stale(name));
    }

    /// The tensor `name` as `[C, F, H, W]` (a rank-3 tensor `[F, H, W]` gains `C = 1`), read
    /// from `document` on first use; a file's tensor above [`FRAMES_ONLY_ABOVE_VALUES`] values
    /// is frames only (nothing read until a frame is drawn).
    pub fn get(&mut self, document: &Document, name: TensorName) -> Result<&GpuTensor, &str> {
        if self.entries.get(&name).is_none() {
            self.loads += 1;
            let key = ImageKey::of(&(name, self.loads));
            let loaded = match document.frame_reader(&name, FRAMES_ONLY_ABOVE_VALUES) {
                Some((shape, read_frame)) => GpuTensor::frames_only(key, shape, read_frame)
                    .ok_or_else(|| format!("{name} has an empty shape {shape:?}")),
                None => load(document, name, key),
            };
            let bytes = loaded.as_ref().map_or(0, |tensor| 4 * tensor.values().len() as u64);
            self.entries.insert(name, loaded, bytes);
        }
        match self.entries.get(&name) {
            Some(Ok(tensor)) => Ok(tensor),
            Some(Err(message)) => Err(message.as_str()),
            None => Err("the tensor cache lost the tensor it just read"),
        }
    }
}

/// Reads `name` from `document` as a drawable `[C, F, H, W]` tensor (an `[F, H, W]` tensor gets
/// one channel); the error says what is wrong with it.
pub(super) fn load(document: &Document, name: TensorName, key: ImageKey) -> Result<GpuTensor, String> {
    let (values, dims) = document.tensor_values(&name).map_err(|err| format!("{err:#}"))?;
    let shape = match dims.as_slice() {
        &[c, f, h, w] => [c, f, h, w],
        &[f, h, w] => [1, f, h, w],
        other => return Err(format!("{name} has shape {other:?}, not [C, F, H, W] or [F, H, W]")),
    };
    GpuTensor::new(key, values, shape).ok_or_else(|| format!("{name}: values disagree with shape {shape:?}"))
}
