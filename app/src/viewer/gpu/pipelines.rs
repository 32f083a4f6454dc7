//! Building the GPU side once: shader modules, bind group layouts, the three render pipelines,
//! the colormap table, and the caches, stored in egui-wgpu's `callback_resources`.

use std::fmt;
use std::num::NonZeroU64;

use eframe::egui_wgpu::{RenderState, wgpu};
use wgpu::util::DeviceExt as _;

use super::colormap::{COLORMAP_LEN, Colormap, INF_RGB, NAN_RGB};
use super::frame_params::FrameParams;
use super::uniforms::MAX_PARAMS_BYTES;
use super::upload_cache::{UploadCache, UploadStats};

/// `shaders/latent_rgb.wgsl`.
pub(super) const LATENT_RGB_WGSL: &str = include_str!("../../../../shaders/latent_rgb.wgsl");
/// `shaders/colormap.wgsl`.
pub(super) const COLORMAP_WGSL: &str = include_str!("../../../../shaders/colormap.wgsl");
/// `shaders/difference.wgsl`.
pub(super) const DIFFERENCE_WGSL: &str = include_str!("../../../../shaders/difference.wgsl");

/// Why the GPU image path is not there; the views then draw on the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuUnavailable {
    /// The app runs without the wgpu renderer (e.g. glow).
    NoWgpuRenderer,
    /// The adapter cannot read storage buffers in fragment shaders (some GL/WebGL backends).
    NoFragmentStorage,
}

impl fmt::Display for GpuUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoWgpuRenderer => "the window does not use the wgpu renderer",
            Self::NoFragmentStorage => "the graphics adapter cannot read storage buffers in fragment shaders",
        })
    }
}

impl std::error::Error for GpuUnavailable {}

/// Which pipeline draws an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PipelineKind {
    LatentRgb,
    Colormap,
    Difference,
}

/// Everything the paint callbacks need, built once per render state.
pub(super) struct GpuImageResources {
    latent_rgb: wgpu::RenderPipeline,
    colormap: wgpu::RenderPipeline,
    difference: wgpu::RenderPipeline,
    /// Group 1 (and 2): one read-only storage buffer, a tensor.
    pub tensor_layout: wgpu::BindGroupLayout,
    /// Group 0: the per-draw parameters (binding 0, dynamic offset) and the colormap table.
    pub frame_params: FrameParams,
    pub uploads: UploadCache,
}

impl GpuImageResources {
    pub fn pipeline(&self, kind: PipelineKind) -> &wgpu::RenderPipeline {
        match kind {
            PipelineKind::LatentRgb => &self.latent_rgb,
            PipelineKind::Colormap => &self.colormap,
            PipelineKind::Difference => &self.difference,
        }
    }
}

/// Builds the pipelines into `render_state`'s callback resources, once: later calls do
/// nothing. The pipelines target `render_state.target_format` without multisampling or a
/// depth buffer, as eframe's default `NativeOptions` (and `egui_kittest`) render.
pub fn install(render_state: &RenderState) -> Result<(), GpuUnavailable> {
    let downlevel = render_state.adapter.get_downlevel_capabilities();
    let limits = render_state.device.limits();
    if !downlevel.flags.contains(wgpu::DownlevelFlags::FRAGMENT_STORAGE)
        || limits.max_storage_buffers_per_shader_stage < 2
        || limits.max_bind_groups < 3
    {
        return Err(GpuUnavailable::NoFragmentStorage);
    }
    let mut renderer = render_state.renderer.write();
    if !renderer.callback_resources.contains::<GpuImageResources>() {
        let resources = build(&render_state.device, render_state.target_format);
        renderer.callback_resources.insert(resources);
    }
    Ok(())
}

/// The egui memory key that records a successful install for [`is_available`].
fn installed_id() -> egui::Id {
    egui::Id::unique("stepscope_gpu_images_installed")
}

/// [`install`] from an eframe app's creation context, recording the outcome in the egui
/// context so that [`is_available`] answers from any `Ui`. Call it in the app's `new`.
pub fn install_for_app(cc: &eframe::CreationContext<'_>) -> Result<(), GpuUnavailable> {
    let result = cc.wgpu_render_state.as_ref().ok_or(GpuUnavailable::NoWgpuRenderer).and_then(install);
    let installed = result.is_ok();
    cc.egui_ctx.data_mut(|data| data.insert_temp(installed_id(), installed));
    result
}

/// Whether [`install_for_app`] built the pipelines for this context, so that
/// [`super::paint_image`] draws; if not, draw on the CPU ([`super::render_cpu`]).
#[must_use]
pub fn is_available(ctx: &egui::Context) -> bool {
    ctx.data(|data| data.get_temp::<bool>(installed_id())).unwrap_or(false)
}

/// What the upload cache of `render_state` holds and has uploaded; `None` before [`install`].
#[must_use]
pub fn upload_stats(render_state: &RenderState) -> Option<UploadStats> {
    render_state
        .renderer
        .read()
        .callback_resources
        .get::<GpuImageResources>()
        .map(|resources| resources.uploads.stats())
}

fn build(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> GpuImageResources {
    let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("stepscope_image_params"),
        entries: &[
            uniform_entry(0, true, NonZeroU64::new(MAX_PARAMS_BYTES as u64)),
            uniform_entry(1, false, NonZeroU64::new(COLORMAP_TABLE_BYTES)),
        ],
    });
    let tensor_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("stepscope_image_tensor"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: NonZeroU64::new(4),
            },
            count: None,
        }],
    });
    let pipeline = |label: &str, source: &str, num_tensors: usize| {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let mut layouts = vec![Some(&params_layout)];
        layouts.extend(std::iter::repeat_n(Some(&tensor_layout), num_tensors));
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &layouts,
            immediate_size: 0,
        });
        create_pipeline(device, label, &layout, &module, target_format)
    };
    let latent_rgb = pipeline("stepscope_latent_rgb", LATENT_RGB_WGSL, 1);
    let colormap = pipeline("stepscope_colormap", COLORMAP_WGSL, 1);
    let difference = pipeline("stepscope_difference", DIFFERENCE_WGSL, 2);

    let colormap_table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("stepscope_colormap_table"),
        contents: bytemuck::cast_slice(&colormap_table_rows()),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let frame_params = FrameParams::new(device, params_layout, colormap_table);
    GpuImageResources {
        latent_rgb,
        colormap,
        difference,
        tensor_layout,
        frame_params,
        uploads: UploadCache::default(),
    }
}

/// Bytes of `colormap_table` in the shaders: every map's entries as `vec4<f32>`.
const COLORMAP_TABLE_BYTES: u64 = (Colormap::ALL.len() * COLORMAP_LEN * 16) as u64;

/// Every map's entries in table order, as `vec4`s with `w = 1`.
fn colormap_table_rows() -> Vec<[f32; 4]> {
    Colormap::ALL.iter().flat_map(|map| map.table().iter().map(|&[r, g, b]| [r, g, b, 1.0])).collect()
}

fn uniform_entry(
    binding: u32,
    has_dynamic_offset: bool,
    size: Option<NonZeroU64>,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset,
            min_binding_size: size,
        },
        count: None,
    }
}

fn create_pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    target_format: wgpu::TextureFormat,
) -> wgpu::RenderPipeline {
    // The framebuffer egui prefers stores sRGB bytes as they are; an sRGB one encodes on
    // write, so the shader must hand it linear values.
    let [nan_r, nan_g, nan_b] = NAN_RGB.map(f64::from);
    let [inf_r, inf_g, inf_b] = INF_RGB.map(f64::from);
    let constants = [
        ("LINEAR_FRAMEBUFFER", if target_format.is_srgb() { 1.0 } else { 0.0 }),
        ("NAN_R", nan_r),
        ("NAN_G", nan_g),
        ("NAN_B", nan_b),
        ("INF_R", inf_r),
        ("INF_G", inf_g),
        ("INF_B", inf_b),
    ];
    let compilation_options =
        wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() };
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_main"),
            buffers: &[],
            compilation_options: compilation_options.clone(),
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some("fs_main"),
            targets: &[Some(wgpu::ColorTargetState {
                format: target_format,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
            compilation_options,
        }),
        multiview_mask: None,
        cache: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colormap_table_is_every_map_in_order() {
        let rows = colormap_table_rows();
        assert_eq!(rows.len() as u64 * 16, COLORMAP_TABLE_BYTES);
        assert_eq!(rows[0][..3], Colormap::Viridis.table()[0]);
        assert_eq!(
            rows[COLORMAP_LEN * Colormap::Magma.table_idx() as usize][..3],
            Colormap::Magma.table()[0]
        );
    }

    #[test]
    fn the_reasons_read_as_sentences() {
        assert_eq!(GpuUnavailable::NoWgpuRenderer.to_string(), "the window does not use the wgpu renderer");
    }
}
