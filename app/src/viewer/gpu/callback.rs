//! The egui-wgpu paint callback that draws one [`GpuImage`]: `prepare` uploads what is new and
//! writes the draw's parameters, `paint` binds them and draws one triangle over the rectangle.

use std::sync::{Mutex, PoisonError};

use eframe::egui_wgpu::{self, CallbackResources, ScreenDescriptor, wgpu};

use super::image::GpuImage;
use super::pipelines::{GpuImageResources, PipelineKind};
use super::uniforms::DrawParams;

/// What `prepare` set up for `paint`.
struct Prepared {
    kind: PipelineKind,
    params: wgpu::BindGroup,
    params_offset: u32,
    /// Group 1 (and 2 for a difference).
    tensors: Vec<wgpu::BindGroup>,
}

/// Draws `image` over `rect` (points).
pub(super) struct ImageCallback {
    image: GpuImage,
    rect: egui::Rect,
    prepared: Mutex<Option<Prepared>>,
}

impl ImageCallback {
    pub fn new(image: GpuImage, rect: egui::Rect) -> Self {
        Self { image, rect, prepared: Mutex::new(None) }
    }

    fn prepare_draw(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pixels_per_point: f32,
        resources: &mut GpuImageResources,
    ) -> Option<Prepared> {
        let tensors = self
            .image
            .tensors()
            .map(|tensor| resources.uploads.bind_group(device, &resources.tensor_layout, tensor))
            .collect::<Option<Vec<_>>>()?;
        let rect_min_px = (self.rect.min.to_vec2() * pixels_per_point).into();
        let rect_size_px = (self.rect.size() * pixels_per_point).into();
        let params = DrawParams::new(&self.image, rect_min_px, rect_size_px);
        let kind = match params {
            DrawParams::LatentRgb(_) => PipelineKind::LatentRgb,
            DrawParams::Colormap(_) => PipelineKind::Colormap,
            DrawParams::Difference(_) => PipelineKind::Difference,
        };
        let (params, params_offset) = resources.frame_params.push(device, queue, params.bytes());
        Some(Prepared { kind, params, params_offset, tensors })
    }
}

impl egui_wgpu::CallbackTrait for ImageCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen_descriptor: &ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let prepared = callback_resources.get_mut::<GpuImageResources>().and_then(|resources| {
            self.prepare_draw(device, queue, screen_descriptor.pixels_per_point, resources)
        });
        *self.prepared.lock().unwrap_or_else(PoisonError::into_inner) = prepared;
        Vec::new()
    }

    fn finish_prepare(
        &self,
        _device: &wgpu::Device,
        _queue: &wgpu::Queue,
        _egui_encoder: &mut wgpu::CommandEncoder,
        callback_resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(resources) = callback_resources.get_mut::<GpuImageResources>() {
            resources.frame_params.start_over();
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        callback_resources: &CallbackResources,
    ) {
        let Some(resources) = callback_resources.get::<GpuImageResources>() else { return };
        let prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(prepared) = prepared.as_ref() else { return };
        render_pass.set_pipeline(resources.pipeline(prepared.kind));
        render_pass.set_bind_group(0, &prepared.params, &[prepared.params_offset]);
        for (group_idx, tensor) in (1..).zip(&prepared.tensors) {
            render_pass.set_bind_group(group_idx, tensor, &[]);
        }
        render_pass.draw(0..3, 0..1);
    }
}
