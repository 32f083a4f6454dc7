//! The per-draw parameters of each shader, as `#[repr(C)]` Pod structs laid out exactly like
//! the WGSL structs of the same name (a test checks every field's offset with naga).

use bytemuck::{Pod, Zeroable};

use super::image::{DifferenceReduce, GpuImage, ImageStyle};
use super::reference::{LatentRgbMap, MAX_RGB_CHANNELS};

/// `LatentRgbParams` in `latent_rgb.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub(super) struct LatentRgbParams {
    pub rect_min_px: [f32; 2],
    pub rect_size_px: [f32; 2],
    pub num_channels: u32,
    pub height: u32,
    pub width: u32,
    pub channel_stride: u32,
    pub frame_offset: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
    pub bias: [f32; 4],
    pub post_scale: [f32; 4],
    pub post_offset: [f32; 4],
    pub factors: [[f32; 4]; MAX_RGB_CHANNELS],
}

/// `ColormapParams` in `colormap.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub(super) struct ColormapParams {
    pub rect_min_px: [f32; 2],
    pub rect_size_px: [f32; 2],
    pub height: u32,
    pub width: u32,
    pub plane_offset: u32,
    pub map_idx: u32,
    pub range: [f32; 2],
    pub _pad0: [f32; 2],
}

/// `DifferenceParams` in `difference.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub(super) struct DifferenceParams {
    pub rect_min_px: [f32; 2],
    pub rect_size_px: [f32; 2],
    pub num_channels: u32,
    pub height: u32,
    pub width: u32,
    pub channel_stride: u32,
    pub frame_offset: u32,
    pub reduce: u32,
    pub map_idx: u32,
    pub _pad0: u32,
    pub range: [f32; 2],
    pub _pad1: [f32; 2],
}

/// The largest of the parameter structs, in bytes: what one draw's uniform slot must hold.
pub(super) const MAX_PARAMS_BYTES: usize = {
    let (a, b, c) =
        (size_of::<LatentRgbParams>(), size_of::<ColormapParams>(), size_of::<DifferenceParams>());
    let ab = if a > b { a } else { b };
    if ab > c { ab } else { c }
};

/// Which shader draws an image, with its parameters.
#[allow(clippy::large_enum_variant, reason = "built once per draw to be written out, never stored")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum DrawParams {
    LatentRgb(LatentRgbParams),
    Colormap(ColormapParams),
    Difference(DifferenceParams),
}

impl DrawParams {
    /// The parameters to draw `image` over the framebuffer rectangle at `rect_min_px` of
    /// `rect_size_px` pixels.
    pub fn new(image: &GpuImage, rect_min_px: [f32; 2], rect_size_px: [f32; 2]) -> Self {
        let [channels, frames, height, width] = image.tensor().shape();
        let frame_len = height * width;
        let frame_offset = (image.frame_idx() * frame_len) as u32;
        let channel_stride = (frames * frame_len) as u32;
        let (height, width) = (height as u32, width as u32);
        match image.style() {
            ImageStyle::Colormap { channel_idx, map, range } => Self::Colormap(ColormapParams {
                rect_min_px,
                rect_size_px,
                height,
                width,
                plane_offset: *channel_idx as u32 * channel_stride + frame_offset,
                map_idx: map.table_idx(),
                range: *range,
                _pad0: [0.0; 2],
            }),
            ImageStyle::Difference { reduce, map, range, .. } => Self::Difference(DifferenceParams {
                rect_min_px,
                rect_size_px,
                num_channels: channels as u32,
                height,
                width,
                channel_stride,
                frame_offset,
                reduce: match reduce {
                    DifferenceReduce::Max => 0,
                    DifferenceReduce::Mean => 1,
                },
                map_idx: map.table_idx(),
                _pad0: 0,
                range: *range,
                _pad1: [0.0; 2],
            }),
            style => {
                let Some(map) = LatentRgbMap::for_style(style, channels) else {
                    unreachable!("every other style is an RGB map")
                };
                Self::LatentRgb(LatentRgbParams {
                    rect_min_px,
                    rect_size_px,
                    num_channels: channels.min(MAX_RGB_CHANNELS) as u32,
                    height,
                    width,
                    channel_stride,
                    frame_offset,
                    _pad0: 0,
                    _pad1: 0,
                    _pad2: 0,
                    bias: with_w(map.bias),
                    post_scale: with_w(map.post_scale),
                    post_offset: with_w(map.post_offset),
                    factors: map.factors.map(with_w),
                })
            }
        }
    }

    /// The bytes to write into the uniform buffer.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::LatentRgb(params) => bytemuck::bytes_of(params),
            Self::Colormap(params) => bytemuck::bytes_of(params),
            Self::Difference(params) => bytemuck::bytes_of(params),
        }
    }
}

/// `[x, y, z]` as a WGSL `vec4` with `w = 0`.
fn with_w([x, y, z]: [f32; 3]) -> [f32; 4] {
    [x, y, z, 0.0]
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "the parameters are copies of the constants, bit for bit")]
mod tests {
    use std::mem::offset_of;

    use super::*;
    use crate::viewer::gpu::pipelines::{COLORMAP_WGSL, DIFFERENCE_WGSL, LATENT_RGB_WGSL};
    use crate::viewer::gpu::reference::{WAN21_LATENT_RGB_BIAS, WAN21_LATENT_RGB_FACTORS};
    use crate::viewer::gpu::{Colormap, GpuTensor, ImageKey};

    /// The `(name, offset)` of every member of struct `name` in `source`, and its size.
    fn wgsl_layout(source: &str, name: &str) -> (Vec<(String, u32)>, u32) {
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let (_, ty) = module.types.iter().find(|(_, ty)| ty.name.as_deref() == Some(name)).unwrap();
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{name} is not a struct") };
        let members = members.iter().map(|member| (member.name.clone().unwrap(), member.offset)).collect();
        (members, *span)
    }

    /// `(name, offset)` of the named fields of a Rust struct, in the order given.
    macro_rules! rust_layout {
        ($ty:ty { $($field:ident),* $(,)? }) => {
            vec![$((stringify!($field).to_owned(), offset_of!($ty, $field) as u32)),*]
        };
    }

    #[test]
    fn every_params_struct_matches_its_shader() {
        let cases = [
            (
                LATENT_RGB_WGSL,
                "LatentRgbParams",
                rust_layout!(LatentRgbParams {
                    rect_min_px,
                    rect_size_px,
                    num_channels,
                    height,
                    width,
                    channel_stride,
                    frame_offset,
                    _pad0,
                    _pad1,
                    _pad2,
                    bias,
                    post_scale,
                    post_offset,
                    factors,
                }),
                size_of::<LatentRgbParams>(),
            ),
            (
                COLORMAP_WGSL,
                "ColormapParams",
                rust_layout!(ColormapParams {
                    rect_min_px,
                    rect_size_px,
                    height,
                    width,
                    plane_offset,
                    map_idx,
                    range,
                    _pad0,
                }),
                size_of::<ColormapParams>(),
            ),
            (
                DIFFERENCE_WGSL,
                "DifferenceParams",
                rust_layout!(DifferenceParams {
                    rect_min_px,
                    rect_size_px,
                    num_channels,
                    height,
                    width,
                    channel_stride,
                    frame_offset,
                    reduce,
                    map_idx,
                    _pad0,
                    range,
                    _pad1,
                }),
                size_of::<DifferenceParams>(),
            ),
        ];
        for (source, name, rust_members, rust_size) in cases {
            let (wgsl_members, wgsl_size) = wgsl_layout(source, name);
            assert_eq!(wgsl_members, rust_members, "{name}: fields or offsets differ");
            assert_eq!(wgsl_size as usize, rust_size, "{name}: sizes differ");
        }
    }

    #[test]
    fn the_colormap_table_in_the_shaders_holds_every_map() {
        for source in [COLORMAP_WGSL, DIFFERENCE_WGSL] {
            let module = naga::front::wgsl::parse_str(source).unwrap();
            let (_, table) = module
                .global_variables
                .iter()
                .find(|(_, var)| var.name.as_deref() == Some("colormap_table"))
                .unwrap();
            let naga::TypeInner::Array { size: naga::ArraySize::Constant(len), .. } =
                module.types[table.ty].inner
            else {
                panic!("colormap_table is not a fixed-size array");
            };
            assert_eq!(len.get() as usize, Colormap::ALL.len() * crate::viewer::gpu::COLORMAP_LEN);
        }
    }

    #[test]
    fn wan21_params_carry_comfyuis_factors_row_by_row() {
        let tensor = GpuTensor::new(ImageKey(0), vec![0.0; 16 * 2 * 3 * 4], [16, 2, 3, 4]).unwrap();
        let image = GpuImage::new(tensor, 1, ImageStyle::Wan21Latent).unwrap();
        let DrawParams::LatentRgb(params) = DrawParams::new(&image, [10.0, 20.0], [40.0, 30.0]) else {
            panic!("not the RGB shader");
        };
        for (row, factors) in params.factors.iter().zip(WAN21_LATENT_RGB_FACTORS) {
            assert_eq!(*row, with_w(factors));
        }
        assert_eq!(params.bias, with_w(WAN21_LATENT_RGB_BIAS));
        assert_eq!((params.post_scale, params.post_offset), ([0.5, 0.5, 0.5, 0.0], [0.5, 0.5, 0.5, 0.0]));
        assert_eq!((params.num_channels, params.height, params.width), (16, 3, 4));
        assert_eq!((params.channel_stride, params.frame_offset), (24, 12));
        assert!(MAX_PARAMS_BYTES >= size_of::<LatentRgbParams>());
    }

    #[test]
    fn colormap_params_point_at_the_channel_and_frame() {
        // [C=2, F=3, H=2, W=2]: channel 1, frame 2 starts at 1 * 12 + 2 * 4 = 20.
        let tensor = GpuTensor::new(ImageKey(0), vec![0.0; 24], [2, 3, 2, 2]).unwrap();
        let style = ImageStyle::Colormap { channel_idx: 1, map: Colormap::Magma, range: [-1.0, 1.0] };
        let image = GpuImage::new(tensor, 2, style).unwrap();
        let DrawParams::Colormap(params) = DrawParams::new(&image, [0.0; 2], [8.0; 2]) else {
            panic!("not the colormap shader");
        };
        assert_eq!((params.plane_offset, params.map_idx, params.range), (20, 1, [-1.0, 1.0]));
    }
}
