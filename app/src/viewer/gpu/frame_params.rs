//! The per-draw parameters of one rendered frame, packed into one uniform buffer at dynamic
//! offsets, so that many images can be drawn in a frame without a buffer each.
//!
//! Every image's callback takes the next slot in `prepare`; the first `finish_prepare` of the
//! frame starts the slots over for the next frame (egui-wgpu calls every `prepare` of a frame
//! before any `finish_prepare`, and the queue orders the next frame's writes after this
//! frame's draws). When a frame needs more slots the buffer doubles; the draws already
//! prepared keep the old buffer alive through their bind group.

use eframe::egui_wgpu::wgpu;

use super::uniforms::MAX_PARAMS_BYTES;

/// Slots in the first buffer: a screen of 64 images without growing.
const INITIAL_SLOTS: u64 = 64;

/// A growable uniform buffer of per-draw parameter slots, and the bind group over it.
pub(super) struct FrameParams {
    layout: wgpu::BindGroupLayout,
    colormap_table: wgpu::Buffer,
    buffer: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Bytes from one slot to the next: the parameters rounded up to the device's alignment.
    slot_bytes: u64,
    capacity_slots: u64,
    next_slot: u64,
}

impl FrameParams {
    /// Slots over bind group `layout`, whose binding 1 is the `colormap_table` buffer.
    pub fn new(device: &wgpu::Device, layout: wgpu::BindGroupLayout, colormap_table: wgpu::Buffer) -> Self {
        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment);
        let slot_bytes = (MAX_PARAMS_BYTES as u64).div_ceil(alignment) * alignment;
        let (buffer, bind_group) = create(device, &layout, &colormap_table, slot_bytes * INITIAL_SLOTS);
        Self {
            layout,
            colormap_table,
            buffer,
            bind_group,
            slot_bytes,
            capacity_slots: INITIAL_SLOTS,
            next_slot: 0,
        }
    }

    /// Writes `params` into the next free slot; the bind group to set as group 0 and the
    /// dynamic offset of the slot.
    pub fn push(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        params: &[u8],
    ) -> (wgpu::BindGroup, u32) {
        debug_assert!(params.len() <= MAX_PARAMS_BYTES);
        if self.next_slot == self.capacity_slots {
            self.capacity_slots *= 2;
            (self.buffer, self.bind_group) =
                create(device, &self.layout, &self.colormap_table, self.slot_bytes * self.capacity_slots);
        }
        let offset = self.next_slot * self.slot_bytes;
        self.next_slot += 1;
        queue.write_buffer(&self.buffer, offset, params);
        (self.bind_group.clone(), offset as u32)
    }

    /// Frees every slot for the next frame.
    pub fn start_over(&mut self) {
        self.next_slot = 0;
    }
}

fn create(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    colormap_table: &wgpu::Buffer,
    size: u64,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("stepscope_image_params"),
        size,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("stepscope_image_params"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(MAX_PARAMS_BYTES as u64),
                }),
            },
            wgpu::BindGroupEntry { binding: 1, resource: colormap_table.as_entire_binding() },
        ],
    });
    (buffer, bind_group)
}
