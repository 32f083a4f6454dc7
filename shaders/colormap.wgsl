// colormap.wgsl: a scalar field, one `[H, W]` plane of a `[C, F, H, W]` f32 tensor, coloured
// by viridis or magma over a value range, one crisp square per tensor pixel. NaN shows as
// `nan_rgb()` and +/-infinity as `inf_rgb()` (colours neither map contains). Used for
// token-norm, step x frame, probe and attention heatmaps.
//
// The colormaps are matplotlib's 256-entry tables (see `colormap_lookup` below); the CPU
// reference and the legend use the same tables (`app/src/viewer/gpu/colormap.rs`).
//
// Bindings: group 0 holds the per-draw parameters (dynamic offset) and the colormap table;
// group 1 holds the tensor, uploaded once per key.

struct ColormapParams {
    // The image's rectangle in framebuffer pixels (it may reach past the viewport).
    rect_min_px: vec2<f32>,
    rect_size_px: vec2<f32>,
    // The field's height and width in tensor pixels.
    height: u32,
    width: u32,
    // Index of the field's first element (channel_idx * F * H * W + frame_idx * H * W).
    plane_offset: u32,
    // 0 viridis, 1 magma.
    map_idx: u32,
    // Values at `range.x` and below get the first colour, `range.y` and above the last.
    range: vec2<f32>,
    _pad0: vec2<f32>,
}

@group(0) @binding(0) var<uniform> params: ColormapParams;
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

// --- BEGIN shared: colormap_lookup (the same text in every shader here; a test compares the copies) ---
// 256 entries of each colormap, sRGB in [0, 1] (rgb; a unused): viridis at 0..256, magma at
// 256..512. Uploaded once from the Rust tables (`app/src/viewer/gpu/colormap_data.rs`, copied
// from matplotlib's `_cm_listed.py`), so CPU and GPU share one source.
@group(0) @binding(1) var<uniform> colormap_table: array<vec4<f32>, 512>;

// The colour of `value` under colormap `map_idx` (0 viridis, 1 magma) over `range` (min, max),
// as matplotlib's `ListedColormap` picks it: t = (value - min) / (max - min), entry
// floor(256 t) clamped to [0, 255]. An empty or reversed range gives t = 0. NaN gives
// `nan_rgb()`, an infinity `inf_rgb()`.
fn colormap_rgb(map_idx: u32, value: f32, range: vec2<f32>) -> vec3<f32> {
    if is_nan(value) {
        return nan_rgb();
    }
    if !is_finite(value) {
        return inf_rgb();
    }
    let span = range.y - range.x;
    var t = 0.0;
    if span > 0.0 {
        t = (value - range.x) / span;
    }
    let entry_idx = u32(clamp(floor(t * 256.0), 0.0, 255.0));
    return colormap_table[min(map_idx, 1u) * 256u + entry_idx].rgb;
}
// --- END shared: colormap_lookup ---

@fragment
fn fs_main(in: VertexOutput) -> @location(0) vec4<f32> {
    let texel = texel_at(in.position.xy, params.rect_min_px, params.rect_size_px, params.width, params.height);
    let value = tensor[params.plane_offset + texel.y * params.width + texel.x];
    return to_framebuffer(colormap_rgb(params.map_idx, value, params.range));
}
