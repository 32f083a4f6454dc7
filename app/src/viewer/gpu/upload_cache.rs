//! Tensors on the GPU, uploaded once per [`ImageKey`] and kept in a bounded LRU cache, so that
//! scrubbing back and forth over steps draws from buffers already there.

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt as _;

use super::super::lru::Lru;
use super::image::{GpuTensor, ImageKey};

/// Tensors kept at most.
const MAX_ENTRIES: usize = 1024;

/// Bytes of tensors kept at most (the newest tensor stays even if it alone is larger).
const MAX_BYTES: u64 = 512 << 20;

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
