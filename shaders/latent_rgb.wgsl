// latent_rgb.wgsl: one frame of a `[C, F, H, W]` f32 tensor drawn as RGB, one crisp square per
// tensor pixel (nearest-neighbour).
//
// Every RGB mapping Stepscope uses is one affine map of the first (up to) 48 channels:
//     linear = latent[0..48] · factors (48 x 3) + bias
//     rgb    = clamp(linear * post_scale + post_offset, 0, 1)
// The CPU fills `factors`, `bias`, `post_scale` and `post_offset` for each style
// (`app/src/viewer/gpu/uniforms.rs`: `LatentRgbParams`, whose layout a test checks against the
// struct below):
// - Wan2.1 latent preview: `factors` and `bias` are ComfyUI's `Wan21.latent_rgb_factors` and
//   `latent_rgb_factors_bias` (comfy/latent_formats.py); post = (x + 1) / 2, which with the
//   clamp is ComfyUI's `preview_to_image` (latent_preview.py: clamp to [-1, 1], add 1,
//   multiply by 127.5). Wan2.2's 48-channel latents: the same with ComfyUI's `Wan22` factors.
// - pixels: identity factors, post = (x + 1) / 2.
// - normalised channels: channel c -> colour c, post = the CPU's per-channel min/max map.
// A pixel with a NaN in any channel read is `nan_rgb()`; else one with an infinity `inf_rgb()`.
//
// Bindings: group 0 holds the per-draw parameters (dynamic offset; the colormap table at
// binding 1 of that group is not used here); group 1 holds the tensor, uploaded once per key.

struct LatentRgbParams {
    // The image's rectangle in framebuffer pixels (it may reach past the viewport).
    rect_min_px: vec2<f32>,
    rect_size_px: vec2<f32>,
    // Channels read (at most 48), and the frame's height and width in tensor pixels.
    num_channels: u32,
    height: u32,
    width: u32,
    // Elements from one channel to the next (F * H * W).
    channel_stride: u32,
    // Index of the frame's first element in channel 0 (f * H * W).
    frame_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    bias: vec4<f32>,
    post_scale: vec4<f32>,
    post_offset: vec4<f32>,
    // Row c: the (r, g, b, unused) contribution of channel c.
    factors: array<vec4<f32>, 48>,
}

@group(0) @binding(0) var<uniform> params: LatentRgbParams;
@group(1) @binding(0) var<storage, read> tensor: array<f32>;

// --- BEGIN shared: image_common (the same text in every shader here; a test compares the copies) ---
// True when the framebuffer is sRGB (it encodes on write), so the shader must output linear.
override LINEAR_FRAMEBUFFER: bool = false;

struct VertexOutput {
    @builtin(position) position: vec4<f32>,
}

// One triangle that covers the whole viewport (egui sets it to the callback's rectangle).
@vertex
fn vs_main(@builtin(vertex_index) vertex_idx: u32) -> VertexOutput {
    let corner = vec2<f32>(f32((vertex_idx << 1u) & 2u), f32(vertex_idx & 2u));
    var out: VertexOutput;
    out.position = vec4<f32>(corner * 2.0 - 1.0, 0.0, 1.0);
    return out;
}

// The tensor pixel (column, row) under framebuffer position `frag_px`, nearest-neighbour, for
// an image of `width` x `height` tensor pixels drawn over the rectangle at `rect_min_px` of
// `rect_size_px` framebuffer pixels.
fn texel_at(frag_px: vec2<f32>, rect_min_px: vec2<f32>, rect_size_px: vec2<f32>, width: u32, height: u32) -> vec2<u32> {
    let size = vec2<f32>(f32(width), f32(height));
    let unit = (frag_px - rect_min_px) / rect_size_px;
    return vec2<u32>(clamp(floor(unit * size), vec2<f32>(0.0), size - 1.0));
}

// NaN and infinity have every exponent bit set. Tested on the bits, because shader compilers
// may assume that floats are finite and fold `x != x` away.
fn is_finite(value: f32) -> bool {
    return (bitcast<u32>(value) & 0x7f800000u) != 0x7f800000u;
}

fn is_nan(value: f32) -> bool {
    let bits = bitcast<u32>(value);
    return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

// The colours of NaN and of +/-infinity, the same in every view and in `export`: the pipelines
// set these from `NAN_RGB` and `INF_RGB` in `app/src/viewer/gpu/colormap.rs` (the defaults are
// the same values).
override NAN_R: f32 = 1.0;
override NAN_G: f32 = 0.0;
override NAN_B: f32 = 1.0;
override INF_R: f32 = 0.0;
override INF_G: f32 = 1.0;
override INF_B: f32 = 1.0;

fn nan_rgb() -> vec3<f32> {
    return vec3<f32>(NAN_R, NAN_G, NAN_B);
}

fn inf_rgb() -> vec3<f32> {
    return vec3<f32>(INF_R, INF_G, INF_B);
}

// An sRGB-encoded colour in [0, 1] as the framebuffer wants it, opaque.
fn to_framebuffer(gamma: vec3<f32>) -> vec4<f32> {
    if LINEAR_FRAMEBUFFER {
        let low = gamma / 12.92;
        let high = pow((gamma + 0.055) / 1.055, vec3<f32>(2.4));
        return vec4<f32>(select(high, low, gamma <= vec3<f32>(0.04045)), 1.0);
    }
    return vec4<f32>(gamma, 1.0);
}
// --- END shared: image_common ---

@fragment
fn fs_main(in: VertexOutput) -> @location(0) vec4<f32> {
    let texel = texel_at(in.position.xy, params.rect_min_px, params.rect_size_px, params.width, params.height);
    let pixel_idx = params.frame_offset + texel.y * params.width + texel.x;
    var linear = params.bias.rgb;
    var any_nan = false;
    var any_infinite = false;
    for (var channel_idx = 0u; channel_idx < min(params.num_channels, 48u); channel_idx++) {
        let value = tensor[channel_idx * params.channel_stride + pixel_idx];
        any_nan = any_nan || is_nan(value);
        any_infinite = any_infinite || !is_finite(value);
        linear += value * params.factors[channel_idx].rgb;
    }
    if any_nan {
        return to_framebuffer(nan_rgb());
    }
    if any_infinite {
        return to_framebuffer(inf_rgb());
    }
    let rgb = clamp(linear * params.post_scale.rgb + params.post_offset.rgb, vec3<f32>(0.0), vec3<f32>(1.0));
    return to_framebuffer(rgb);
}
