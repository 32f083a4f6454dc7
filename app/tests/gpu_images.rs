#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
//! The GPU image shaders, rendered headless through `egui_kittest` on the wgpu renderer (Mesa's
//! lavapipe on a machine without a GPU) and read back: every style, pixel for pixel, equals the
//! CPU reference within 2/255 per colour channel; tensors upload once per key.

use egui::{Pos2, Rect, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use stepscope::viewer::gpu::{
    self, Colormap, DifferenceReduce, GpuImage, GpuTensor, GpuUnavailable, ImageKey, ImageStyle,
};

/// Screen points (and pixels: the harness draws at 1 pixel per point) per tensor pixel.
const SCALE: f32 = 8.0;

/// Largest difference allowed per colour channel, in bytes: the GPU may fuse or reorder the
/// float arithmetic, and rounds to bytes itself.
const TOLERANCE: u8 = 2;

/// Draws a fixed list of images, each at a fixed place.
struct ImagesApp {
    images: Vec<(Pos2, GpuImage)>,
    installed: Result<(), GpuUnavailable>,
    render_state: Option<eframe::egui_wgpu::RenderState>,
}

impl ImagesApp {
    fn new(cc: &eframe::CreationContext<'_>, images: Vec<(Pos2, GpuImage)>) -> Self {
        let installed = gpu::install_for_app(cc);
        Self { images, installed, render_state: cc.wgpu_render_state.clone() }
    }
}

impl eframe::App for ImagesApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for (min, image) in &self.images {
            let [height, width] = image.size();
            let rect = Rect::from_min_size(*min, Vec2::new(width as f32, height as f32) * SCALE);
            gpu::paint_image(ui.painter(), rect, image.clone());
        }
    }
}

/// `len` values spread over `[-spread, spread]` by a fixed linear congruential generator.
fn noise(len: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1_u64 << 24) as f32 * 2.0 - 1.0) * spread
        })
        .collect()
}

fn tensor(key: u64, shape: [usize; 4], spread: f32) -> GpuTensor {
    GpuTensor::new(ImageKey(key), noise(shape.iter().product(), key, spread), shape).unwrap()
}

/// One image of every style, 4 x 3 tensor pixels each, with NaN and infinities where they
/// matter.
fn images_of_every_style() -> Vec<(&'static str, GpuImage)> {
    let shape = |channels, frames| [channels, frames, 3, 4];
    let mut wan_values = noise(16 * 2 * 12, 1, 2.5);
    wan_values[(5 * 2 + 1) * 12 + 7] = f32::NAN; // channel 5, frame 1, pixel 7: the NaN colour.
    wan_values[(6 * 2 + 1) * 12 + 8] = f32::INFINITY; // channel 6, frame 1, pixel 8: the infinity colour.
    wan_values[(7 * 2 + 1) * 12 + 7] = f32::NEG_INFINITY; // with the NaN at pixel 7: NaN wins.
    let wan = GpuTensor::new(ImageKey(1), wan_values, shape(16, 2)).unwrap();
    let wan22 = tensor(8, shape(48, 1), 2.5);
    let pixels = tensor(2, shape(3, 1), 1.3);
    let two_channels = tensor(3, shape(2, 1), 5.0);
    let mut field_values = noise(12, 4, 1.5);
    field_values[1] = f32::NAN;
    field_values[2] = f32::INFINITY;
    field_values[3] = f32::NEG_INFINITY;
    let field = GpuTensor::scalar_field(ImageKey(4), field_values, [3, 4]).unwrap();
    let channels_by_frames = tensor(5, shape(2, 2), 3.0);
    let mut a_values = noise(3 * 12, 6, 1.0);
    a_values[12 + 5] = f32::NAN; // channel 1, pixel 5: NaN in the difference.
    let a = GpuTensor::new(ImageKey(6), a_values, shape(3, 1)).unwrap();
    let b = tensor(7, shape(3, 1), 1.0);
    let difference =
        |reduce, map| ImageStyle::Difference { other: b.clone(), reduce, map, range: [0.0, 1.5] };

    vec![
        ("wan21 latent, frame 1", GpuImage::new(wan, 1, ImageStyle::Wan21Latent)),
        ("pixels", GpuImage::new(pixels, 0, ImageStyle::Pixels)),
        ("normalised", GpuImage::new(two_channels.clone(), 0, ImageStyle::normalised_for(&two_channels))),
        (
            "viridis",
            GpuImage::new(
                field,
                0,
                ImageStyle::Colormap { channel_idx: 0, map: Colormap::Viridis, range: [-1.0, 1.0] },
            ),
        ),
        (
            "magma, channel 1, frame 1",
            GpuImage::new(
                channels_by_frames,
                1,
                ImageStyle::Colormap { channel_idx: 1, map: Colormap::Magma, range: [-2.0, 2.5] },
            ),
        ),
        ("difference, max", GpuImage::new(a.clone(), 0, difference(DifferenceReduce::Max, Colormap::Magma))),
        ("difference, mean", GpuImage::new(a, 0, difference(DifferenceReduce::Mean, Colormap::Viridis))),
        ("wan22 latent", GpuImage::new(wan22, 0, ImageStyle::Wan22Latent)),
    ]
    .into_iter()
    .map(|(name, image)| (name, image.unwrap()))
    .collect()
}

/// Where image `idx` goes: a row of images 40 points apart.
fn place(idx: usize) -> Pos2 {
    Pos2::new(4.0 + 40.0 * idx as f32, 4.0)
}

fn harness(images: Vec<(Pos2, GpuImage)>) -> Harness<'static, ImagesApp> {
    let mut harness = Harness::builder()
        .with_size([340.0, 40.0])
        .with_render_cursor(false)
        .wgpu()
        .build_eframe(move |cc| ImagesApp::new(cc, images));
    harness.run();
    harness
}

#[test]
fn every_style_matches_the_cpu_reference() {
    let named = images_of_every_style();
    let placed = named.iter().enumerate().map(|(idx, (_, image))| (place(idx), image.clone())).collect();
    let mut harness = harness(placed);
    assert_eq!(harness.state().installed, Ok(()));
    let rendered = harness.render().unwrap();

    let mut mismatches = Vec::new();
    for (idx, (name, image)) in named.iter().enumerate() {
        let expected = gpu::render_cpu(image);
        let [height, width] = image.size();
        for y in 0..height {
            for x in 0..width {
                // The centre of the tensor pixel's square.
                let px = (place(idx).x + (x as f32 + 0.5) * SCALE) as u32;
                let py = (place(idx).y + (y as f32 + 0.5) * SCALE) as u32;
                let got = rendered.get_pixel(px, py).0;
                let want = expected.pixels[y * width + x].to_array();
                let close = (0..3).all(|c| got[c].abs_diff(want[c]) <= TOLERANCE) && got[3] == 255;
                if !close {
                    mismatches.push(format!("{name} at ({x}, {y}): GPU {got:?}, CPU {want:?}"));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn special_values_get_their_colours_on_the_gpu() {
    // Spot checks that do not lean on the CPU reference: NaN is magenta, infinities cyan, in
    // every shader.
    let named = images_of_every_style();
    let placed = named.iter().enumerate().map(|(idx, (_, image))| (place(idx), image.clone())).collect();
    let mut harness = harness(placed);
    let rendered = harness.render().unwrap();
    let at = |idx: usize, x: u32, y: u32| {
        let min = place(idx);
        rendered.get_pixel(min.x as u32 + x * SCALE as u32 + 4, min.y as u32 + y * SCALE as u32 + 4).0
    };
    let viridis_idx = 3;
    let (nan, infinite) = ([255, 0, 255, 255], [0, 255, 255, 255]);
    assert_eq!(at(viridis_idx, 1, 0), nan, "NaN in a colormap");
    assert_eq!(at(viridis_idx, 2, 0), infinite, "+inf in a colormap");
    assert_eq!(at(viridis_idx, 3, 0), infinite, "-inf in a colormap");
    assert_eq!(at(0, 3, 1), nan, "a NaN latent channel (with a -inf one) makes the pixel the NaN colour");
    assert_eq!(at(0, 0, 2), infinite, "an infinite latent channel");
    assert_eq!(at(5, 1, 1), nan, "NaN in a difference");
}

#[test]
fn tensors_upload_once_per_key_while_scrubbing() {
    let named = images_of_every_style();
    // The same tensor drawn twice in one frame is one upload too.
    let mut placed: Vec<_> =
        named.iter().enumerate().map(|(idx, (_, image))| (place(idx), image.clone())).collect();
    placed.push((Pos2::new(4.0, 30.0), named[0].1.clone()));
    let mut harness = harness(placed);
    harness.render().unwrap();
    let render_state = harness.state().render_state.clone().unwrap();
    let first = gpu::upload_stats(&render_state).unwrap();
    // Tensors 1 to 8: the difference images share a and b.
    assert_eq!((first.uploads_total, first.resident_tensors), (8, 8));

    for _ in 0..3 {
        harness.state_mut().images.reverse();
        harness.run();
        harness.render().unwrap();
    }
    assert_eq!(gpu::upload_stats(&render_state).unwrap(), first);
}

#[test]
fn without_wgpu_the_images_are_unavailable() {
    let harness = Harness::builder().build_eframe(|cc| ImagesApp::new(cc, Vec::new()));
    assert_eq!(harness.state().installed, Err(GpuUnavailable::NoWgpuRenderer));
    assert!(!gpu::is_available(&harness.ctx));

    let harness = self::harness(Vec::new());
    assert!(gpu::is_available(&harness.ctx));
}

#[test]
fn the_legend_labels_its_range() {
    let harness = Harness::builder().with_size([320.0, 40.0]).build_ui(|ui| {
        gpu::colormap_legend_ui(ui, Colormap::Magma, [-1.0, 2.5]);
    });
    harness.get_by_label("-1.000");
    harness.get_by_label("2.500");
}
