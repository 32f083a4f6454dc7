//! Tensors the layer and seed views draw, read once from the document and kept (as values for
//! the GPU and for hover read-outs) in a small LRU cache. Each load gets a fresh GPU key, so a
//! tensor that changes (a live run rewound and stepped again) is never drawn from a stale upload.

use std::collections::HashMap;
use std::sync::Arc;

use stepscope_engine::trajectory::TensorName;

use super::document::Document;
use super::gpu::{GpuTensor, ImageKey};

/// How many tensors stay loaded: a 50-step x 4-seed run's captures of a few layers fit.
const CAPACITY: usize = 1024;

#[derive(Debug)]
struct Entry {
    tensor: Result<GpuTensor, String>,
    last_used: u64,
}

/// Loaded tensors by name. Cleared when another document opens.
#[derive(Debug, Default)]
pub struct TensorCache {
    entries: HashMap<TensorName, Entry>,
    clock: u64,
    /// Counts loads, so each gets its own GPU key.
    loads: u64,
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
        self.entries.retain(|name, _| !stale(name));
    }

    /// The tensor `name` as `[C, F, H, W]` (a rank-3 tensor `[F, H, W]` gains `C = 1`), read
    /// from `document` on first use.
    pub fn get(&mut self, document: &Document, name: TensorName) -> Result<&GpuTensor, &str> {
        self.clock += 1;
        if !self.entries.contains_key(&name) {
            self.evict_to(CAPACITY - 1);
            self.loads += 1;
        }
        let key = ImageKey::of(&(name, self.loads));
        let entry = self
            .entries
            .entry(name)
            .or_insert_with(|| Entry { tensor: load(document, name, key), last_used: 0 });
        entry.last_used = self.clock;
        entry.tensor.as_ref().map_err(String::as_str)
    }

    fn evict_to(&mut self, len: usize) {
        while self.entries.len() > len {
            let Some(oldest) =
                self.entries.iter().min_by_key(|(_, entry)| entry.last_used).map(|(name, _)| *name)
            else {
                return;
            };
            self.entries.remove(&oldest);
        }
    }
}

/// Reads `name` from `document` as a drawable `[C, F, H, W]` tensor (an `[F, H, W]` tensor gets
/// one channel); the error says what is wrong with it.
pub(super) fn load(document: &Document, name: TensorName, key: ImageKey) -> Result<GpuTensor, String> {
    let tensor = document.tensor(&name).map_err(|err| format!("{err:#}"))?;
    let dims = tensor.dims().to_vec();
    let shape = match dims.as_slice() {
        &[c, f, h, w] => [c, f, h, w],
        &[f, h, w] => [1, f, h, w],
        other => return Err(format!("{name} has shape {other:?}, not [C, F, H, W] or [F, H, W]")),
    };
    let values: Arc<[f32]> = tensor
        .flatten_all()
        .and_then(|flat| flat.to_dtype(candle_core::DType::F32))
        .and_then(|flat| flat.to_vec1::<f32>())
        .map_err(|err| format!("reading {name}: {err}"))?
        .into();
    GpuTensor::new(key, values, shape).ok_or_else(|| format!("{name}: values disagree with shape {shape:?}"))
}
