//! Drawing tensors on the GPU: latents as RGB, scalar fields through colormaps, and the
//! difference of two tensors, one crisp square per tensor pixel, through egui-wgpu paint
//! callbacks.
//!
//! Use:
//! 1. once, in the app's `new`: [`install_for_app`] (or [`install`] with a `RenderState`);
//! 2. each frame: build a [`GpuImage`] (a [`GpuTensor`] `[C, F, H, W]`, a frame index and an
//!    [`ImageStyle`]) and draw it with [`paint_image`] or [`image_ui`]. Tensors go to the GPU
//!    once per [`ImageKey`] and stay in a bounded LRU cache, so scrubbing re-uploads nothing;
//! 3. where [`is_available`] is false (no wgpu, or an adapter without fragment storage
//!    buffers), draw [`render_cpu`]'s image as a texture instead.
//!
//! The shaders are `shaders/*.wgsl` at the repository root; their per-draw parameters are the
//! Pod structs of `uniforms.rs`, laid out like the WGSL (a test checks). Every mapping has a
//! CPU reference with the same maths ([`render_cpu`], [`LatentRgbMap`], [`Colormap::rgb_of`],
//! [`difference_value`]); the GPU tests compare against it.

mod callback;
mod colormap;
mod colormap_data;
mod frame_params;
mod image;
mod pipelines;
mod reference;
mod uniforms;
mod upload_cache;

pub use colormap::{
    COLORMAP_LEN, Colormap, INF_RGB, NAN_RGB, color32_from_unit_rgb, colormap_legend_ui, format_legend_value,
};
pub use image::{DifferenceReduce, FrameReader, GpuImage, GpuTensor, ImageKey, ImageStyle, NonFiniteCounts};
pub use pipelines::{GpuUnavailable, install, install_for_app, is_available, upload_stats};
pub use reference::{
    LatentRgbMap, MAX_RGB_CHANNELS, WAN21_LATENT_RGB_BIAS, WAN21_LATENT_RGB_FACTORS, WAN22_LATENT_RGB_BIAS,
    WAN22_LATENT_RGB_FACTORS, difference_value, render_cpu,
};
pub use upload_cache::UploadStats;

use eframe::egui_wgpu;

/// Draws `image` over `rect` (points), stretched with nearest-neighbour sampling, clipped to
/// the painter's clip rectangle. Draws nothing where [`is_available`] is false, or when the
/// tensor is larger than the device can bind.
pub fn paint_image(painter: &egui::Painter, rect: egui::Rect, image: GpuImage) {
    painter.add(egui_wgpu::Callback::new_paint_callback(rect, callback::ImageCallback::new(image, rect)));
}

/// Allocates `size` points in `ui` and draws `image` there; the response senses hover (for
/// read-outs of the pixel under the pointer).
pub fn image_ui(ui: &mut egui::Ui, image: GpuImage, size: egui::Vec2) -> egui::Response {
    image_ui_sensing(ui, image, size, egui::Sense::hover())
}

/// [`image_ui`] with the response sensing `sense` (e.g. clicks on a pixel).
pub fn image_ui_sensing(
    ui: &mut egui::Ui,
    image: GpuImage,
    size: egui::Vec2,
    sense: egui::Sense,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(size, sense);
    if ui.is_rect_visible(rect) {
        paint_image(ui.painter(), rect, image);
    }
    response
}
