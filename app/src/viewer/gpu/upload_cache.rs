//! Tensors on the GPU, uploaded once per [`ImageKey`] and kept in a bounded LRU cache, so that
//! scrubbing back and forth over steps draws from buffers already there.

use std::collections::HashMap;
use std::hash::Hash;

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt as _;

use super::image::{GpuTensor, ImageKey};

/// Tensors kept at most.
const MAX_ENTRIES: usize = 1024;

/// Bytes of tensors kept at most (the newest tensor stays even if it alone is larger).
const MAX_BYTES: u64 = 1 << 30;

/// What the upload cache holds and has done, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadStats {
    /// Tensors on the GPU now.
    pub resident_tensors: usize,
    /// Their bytes.
    pub resident_bytes: u64,
    /// Uploads since the pipelines were installed (a cache hit uploads nothing).
    pub uploads_total: u64,
}

/// One tensor on the GPU.
struct Upload {
    bind_group: wgpu::BindGroup,
    len: usize,
}

/// The tensors on the GPU, as bind groups of the tensor layout.
pub(super) struct UploadCache {
    entries: Lru<ImageKey, Upload>,
    uploads_total: u64,
}

impl Default for UploadCache {
    fn default() -> Self {
        Self { entries: Lru::new(MAX_ENTRIES, MAX_BYTES), uploads_total: 0 }
    }
}

impl UploadCache {
    /// The bind group of `tensor`'s buffer, uploaded on first use of its key (or when the key
    /// comes back with another length). `None` if the device cannot bind a buffer that large.
    pub fn bind_group(
        &mut self,
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        tensor: &GpuTensor,
    ) -> Option<wgpu::BindGroup> {
        let values = tensor.values();
        if let Some(upload) = self.entries.get(&tensor.key())
            && upload.len == values.len()
        {
            return Some(upload.bind_group.clone());
        }
        let bytes: &[u8] = bytemuck::cast_slice(values);
        if bytes.len() as u64 > device.limits().max_storage_buffer_binding_size {
            return None;
        }
        let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("stepscope_image_tensor"),
            contents: bytes,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("stepscope_image_tensor"),
            layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: buffer.as_entire_binding() }],
        });
        self.uploads_total += 1;
        let upload = Upload { bind_group: bind_group.clone(), len: values.len() };
        self.entries.insert(tensor.key(), upload, bytes.len() as u64);
        Some(bind_group)
    }

    pub fn stats(&self) -> UploadStats {
        UploadStats {
            resident_tensors: self.entries.len(),
            resident_bytes: self.entries.bytes(),
            uploads_total: self.uploads_total,
        }
    }
}

/// A map that keeps at most `max_entries` entries and `max_bytes` bytes (by the sizes given on
/// insert), dropping the least recently used first.
struct Lru<K, V> {
    entries: HashMap<K, (V, u64, u64)>,
    clock: u64,
    bytes: u64,
    max_entries: usize,
    max_bytes: u64,
}

impl<K: Hash + Eq + Copy, V> Lru<K, V> {
    fn new(max_entries: usize, max_bytes: u64) -> Self {
        Self { entries: HashMap::new(), clock: 0, bytes: 0, max_entries: max_entries.max(1), max_bytes }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The value of `key`, now the most recently used.
    fn get(&mut self, key: &K) -> Option<&V> {
        self.clock += 1;
        let (value, _, last_used) = self.entries.get_mut(key)?;
        *last_used = self.clock;
        Some(value)
    }

    /// Puts `value` of `bytes` bytes under `key` (replacing any), first dropping the least
    /// recently used entries until it fits.
    fn insert(&mut self, key: K, value: V, bytes: u64) {
        self.clock += 1;
        if let Some((_, old_bytes, _)) = self.entries.remove(&key) {
            self.bytes -= old_bytes;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes)
        {
            let Some(oldest) =
                self.entries.iter().min_by_key(|(_, (_, _, last_used))| *last_used).map(|(key, _)| *key)
            else {
                break;
            };
            if let Some((_, old_bytes, _)) = self.entries.remove(&oldest) {
                self.bytes -= old_bytes;
            }
        }
        self.bytes += bytes;
        self.entries.insert(key, (value, bytes, self.clock));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut lru = Lru::new(2, u64::MAX);
        lru.insert(1, "a", 10);
        lru.insert(2, "b", 10);
        assert_eq!(lru.get(&1), Some(&"a"));
        lru.insert(3, "c", 10);
        assert_eq!(lru.get(&2), None, "2 was used least recently");
        assert_eq!((lru.get(&1).copied(), lru.get(&3).copied()), (Some("a"), Some("c")));
        assert_eq!((lru.len(), lru.bytes()), (2, 20));
    }

    #[test]
    fn the_byte_budget_evicts_until_the_new_entry_fits() {
        let mut lru = Lru::new(10, 100);
        lru.insert(1, (), 40);
        lru.insert(2, (), 40);
        lru.insert(3, (), 40);
        assert_eq!((lru.len(), lru.bytes()), (2, 80));
        assert!(lru.get(&1).is_none());
        // One entry over budget on its own still stays: the view needs it now.
        lru.insert(4, (), 500);
        assert_eq!((lru.len(), lru.bytes()), (1, 500));
    }

    #[test]
    fn replacing_a_key_replaces_its_bytes() {
        let mut lru = Lru::new(10, 100);
        lru.insert(1, "old", 60);
        lru.insert(1, "new", 30);
        assert_eq!((lru.get(&1).copied(), lru.len(), lru.bytes()), (Some("new"), 1, 30));
    }
}
