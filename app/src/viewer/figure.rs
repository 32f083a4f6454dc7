//! Pictures as figures for a paper: a grid picture (a contact sheet, a probe heatmap) with its
//! labels around it, black on white: a title, a label above each column and left of each row
//! (every k-th where all would overlap), axis names, and a colour bar with ticks where colours
//! stand for values. Text is rasterised with `ab_glyph` from the window's own font (Ubuntu
//! Light, from egui's default fonts), so a figure needs no system font.

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use anyhow::{Context as _, Result};
use image::{Rgba, RgbaImage};

use super::gpu::Colormap;

/// Label text height, in pixels.
const TEXT_PX: f32 = 15.0;
/// The title's height, in pixels.
const TITLE_PX: f32 = 17.0;
/// Space around labels, in pixels.
const PAD: u32 = 6;
const PAPER: Rgba<u8> = Rgba([255, 255, 255, 255]);
const INK: Rgba<u8> = Rgba([20, 20, 20, 255]);
/// The colour bar's size, in pixels.
const BAR_WIDTH: u32 = 16;
const BAR_HEIGHT: u32 = 160;

/// Where the cells of the picture are: `columns` x `rows` tiles of `tile` pixels, `gap` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub columns: usize,
    pub rows: usize,
    /// `[width, height]` of a tile, in pixels.
    pub tile: [u32; 2],
    pub gap: u32,
}

/// A colour bar: what the colours of `map` over `range` stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct ColourBar {
    pub map: Colormap,
    pub range: [f32; 2],
    pub ticks: Vec<f32>,
    pub label: String,
}

/// The labels of a figure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub title: String,
    /// One per column, above it (lines split at `\n`).
    pub columns: Vec<String>,
    /// One per row, left of it.
    pub rows: Vec<String>,
    /// Under the column labels' axis (e.g. "step"), and above the row labels (e.g. "layer").
    pub column_axis: Option<String>,
    pub row_axis: Option<String>,
    pub colour_bar: Option<ColourBar>,
}

/// The font labels are drawn in.
struct Pen {
    font: FontRef<'static>,
}

impl Pen {
    fn new() -> Result<Self> {
        let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
            .context("egui's default font could not be read")?;
        Ok(Self { font })
    }

    /// The width and height of `text` (lines split at `\n`) at `px`, in pixels.
    fn size(&self, text: &str, px: f32) -> [u32; 2] {
        let font = self.font.as_scaled(PxScale::from(px));
        let width = text
            .lines()
            .map(|line| line.chars().map(|c| font.h_advance(font.glyph_id(c))).sum::<f32>())
            .fold(0.0_f32, f32::max);
        let lines = text.lines().count().max(1) as f32;
        [width.ceil() as u32, (lines * px * 1.2).ceil() as u32]
    }

    /// Draws `text` with its top-left corner at `(x, y)`, in `colour` blended by coverage.
    fn draw(&self, image: &mut RgbaImage, text: &str, (x, y): (f32, f32), px: f32) {
        let scale = PxScale::from(px);
        let font = self.font.as_scaled(scale);
        for (line_idx, line) in text.lines().enumerate() {
            let baseline = y + font.ascent() + line_idx as f32 * px * 1.2;
            let mut caret = x;
            for c in line.chars() {
                let glyph_id = font.glyph_id(c);
                let glyph = glyph_id.with_scale_and_position(scale, ab_glyph::point(caret, baseline));
                caret += font.h_advance(glyph_id);
                let Some(outlined) = self.font.outline_glyph(glyph) else { continue };
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    let (px_x, px_y) =
                        (bounds.min.x as i64 + i64::from(gx), bounds.min.y as i64 + i64::from(gy));
                    let (Ok(px_x), Ok(px_y)) = (u32::try_from(px_x), u32::try_from(px_y)) else { return };
                    if px_x < image.width() && px_y < image.height() {
                        let under = *image.get_pixel(px_x, px_y);
                        image.put_pixel(px_x, px_y, blend(under, INK, coverage));
                    }
                });
            }
        }
    }
}

/// `over` laid on `under` with opacity `alpha`.
fn blend(under: Rgba<u8>, over: Rgba<u8>, alpha: f32) -> Rgba<u8> {
    let alpha = alpha.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - alpha) + f32::from(b) * alpha).round() as u8;
    Rgba([mix(under[0], over[0]), mix(under[1], over[1]), mix(under[2], over[2]), 255])
}

/// Every how many labels one is drawn so that labels `extent` pixels long, one per `pitch`
/// pixels, do not overlap.
fn label_stride(extent: u32, pitch: u32) -> usize {
    (extent + PAD).div_ceil(pitch.max(1)).max(1) as usize
}

/// `picture` (cells laid out as `grid`) with `labels` around it, on white.
pub fn labelled(picture: &RgbaImage, grid: Grid, labels: &Labels) -> Result<RgbaImage> {
    let pen = Pen::new()?;
    let [tile_w, tile_h] = grid.tile;
    let (column_pitch, row_pitch) = (tile_w + grid.gap, tile_h + grid.gap);
    let column_size = labels.columns.iter().map(|text| pen.size(text, TEXT_PX)).fold([0, 0], max2);
    let row_size = labels.rows.iter().map(|text| pen.size(text, TEXT_PX)).fold([0, 0], max2);
    let title_size = pen.size(&labels.title, TITLE_PX);
    let row_axis_size = labels.row_axis.as_deref().map_or([0, 0], |text| pen.size(text, TEXT_PX));
    let column_axis_size = labels.column_axis.as_deref().map_or([0, 0], |text| pen.size(text, TEXT_PX));
    let bar_ticks_width = labels.colour_bar.as_ref().map_or(0, |bar| {
        bar.ticks.iter().map(|tick| pen.size(&tick_text(*tick), TEXT_PX)[0]).max().unwrap_or(0)
    });
    let bar_label_width = labels.colour_bar.as_ref().map_or(0, |bar| pen.size(&bar.label, TEXT_PX)[0]);

    let left = PAD + row_size[0].max(row_axis_size[0]) + PAD;
    let top = PAD + title_size[1] + PAD + row_axis_size[1].max(column_size[1]) + PAD;
    let right = if labels.colour_bar.is_some() {
        PAD * 3 + BAR_WIDTH + PAD + bar_ticks_width.max(bar_label_width.saturating_sub(BAR_WIDTH + PAD))
    } else {
        PAD
    };
    let bottom = PAD + if labels.column_axis.is_some() { column_axis_size[1] + PAD } else { 0 };
    let bar_height = if labels.colour_bar.is_some() { BAR_HEIGHT + 2 * TEXT_PX as u32 } else { 0 };
    let width = (left + picture.width() + right).max(PAD * 2 + title_size[0]);
    let height = top + picture.height().max(bar_height) + bottom;
    let mut figure = RgbaImage::from_pixel(width, height, PAPER);
    image::imageops::overlay(&mut figure, picture, i64::from(left), i64::from(top));

    pen.draw(&mut figure, &labels.title, (PAD as f32, PAD as f32), TITLE_PX);
    let labels_top = (PAD + title_size[1] + PAD) as f32;
    let column_stride = label_stride(column_size[0], column_pitch);
    for (column_idx, text) in labels.columns.iter().enumerate().step_by(column_stride) {
        let [text_w, text_h] = pen.size(text, TEXT_PX);
        let centre = left as f32 + (column_idx as u32 * column_pitch) as f32 + tile_w as f32 / 2.0;
        let y = top as f32 - PAD as f32 - text_h as f32;
        pen.draw(&mut figure, text, (centre - text_w as f32 / 2.0, y), TEXT_PX);
    }
    if let Some(axis) = &labels.row_axis {
        pen.draw(&mut figure, axis, (PAD as f32, labels_top), TEXT_PX);
    }
    let row_stride = label_stride(row_size[1], row_pitch);
    for (row_idx, text) in labels.rows.iter().enumerate().step_by(row_stride) {
        let [text_w, text_h] = pen.size(text, TEXT_PX);
        let middle = top as f32 + (row_idx as u32 * row_pitch) as f32 + tile_h as f32 / 2.0;
        let x = (left - PAD - text_w) as f32;
        pen.draw(&mut figure, text, (x, middle - text_h as f32 / 2.0), TEXT_PX);
    }
    if let Some(axis) = &labels.column_axis {
        let centre = left as f32 + picture.width() as f32 / 2.0;
        let y = (top + picture.height() + PAD) as f32;
        pen.draw(&mut figure, axis, (centre - column_axis_size[0] as f32 / 2.0, y), TEXT_PX);
    }
    if let Some(bar) = &labels.colour_bar {
        draw_colour_bar(&mut figure, &pen, bar, (left + picture.width() + PAD * 3, top));
    }
    Ok(figure)
}

fn max2([a, b]: [u32; 2], [c, d]: [u32; 2]) -> [u32; 2] {
    [a.max(c), b.max(d)]
}

/// A tick's value as text: as few decimals as tell it apart.
fn tick_text(value: f32) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" { "0".to_owned() } else { text.to_owned() }
}

/// The bar (high values at the top) with its label above and tick labels to its right.
fn draw_colour_bar(figure: &mut RgbaImage, pen: &Pen, bar: &ColourBar, (x, y): (u32, u32)) {
    pen.draw(figure, &bar.label, (x as f32, y as f32), TEXT_PX);
    let bar_top = y + 2 * TEXT_PX as u32;
    let [low, high] = bar.range;
    for row in 0..BAR_HEIGHT {
        let value = high - (high - low) * row as f32 / (BAR_HEIGHT - 1) as f32;
        let rgb = bar.map.rgb_of(value, bar.range).map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8);
        for column in 0..BAR_WIDTH {
            if x + column < figure.width() && bar_top + row < figure.height() {
                figure.put_pixel(x + column, bar_top + row, Rgba([rgb[0], rgb[1], rgb[2], 255]));
            }
        }
    }
    for &tick in &bar.ticks {
        if !(low..=high).contains(&tick) || high <= low {
            continue;
        }
        let row = ((high - tick) / (high - low) * (BAR_HEIGHT - 1) as f32).round() as u32;
        for column in BAR_WIDTH..BAR_WIDTH + 4 {
            if x + column < figure.width() && bar_top + row < figure.height() {
                figure.put_pixel(x + column, bar_top + row, INK);
            }
        }
        let text = tick_text(tick);
        let text_h = pen.size(&text, TEXT_PX)[1];
        let text_y = (bar_top + row) as f32 - text_h as f32 / 2.0;
        pen.draw(figure, &text, ((x + BAR_WIDTH + PAD) as f32, text_y), TEXT_PX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether any pixel of `rect` (x, y, width, height) of `image` is not white.
    fn inked(image: &RgbaImage, (x, y, width, height): (u32, u32, u32, u32)) -> bool {
        (y..y + height).any(|py| (x..x + width).any(|px| *image.get_pixel(px, py) != PAPER))
    }

    #[test]
    fn the_picture_sits_unchanged_among_its_labels() {
        // A 3 x 2 grid of 40 x 30 tiles, 2 apart, each tile its own grey.
        let grid = Grid { columns: 3, rows: 2, tile: [40, 30], gap: 2 };
        let picture = RgbaImage::from_fn(3 * 42 - 2, 2 * 32 - 2, |x, y| {
            let v = (x / 42 + 3 * (y / 32)) as u8 * 30;
            Rgba([v, v, v, 255])
        });
        let labels = Labels {
            title: "sample.safetensors, seed 0: x0_hat".to_owned(),
            columns: (0..3).map(|f| format!("frame {f}")).collect(),
            rows: vec!["step 0\nσ 1.000".to_owned(), "step 5\nσ 0.500".to_owned()],
            column_axis: Some("frame".to_owned()),
            row_axis: Some("step".to_owned()),
            colour_bar: Some(ColourBar {
                map: Colormap::Viridis,
                range: [0.5, 1.0],
                ticks: vec![0.5, 0.75, 1.0],
                label: "balanced accuracy".to_owned(),
            }),
        };
        let figure = labelled(&picture, grid, &labels).expect("a figure");
        // Find the picture: its top-left pixel is the first tile's grey (0) in a white margin.
        let (left, top) = (0..figure.height())
            .flat_map(|y| (0..figure.width()).map(move |x| (x, y)))
            .find(|&(x, y)| {
                (0..picture.height()).step_by(7).all(|py| {
                    (0..picture.width()).step_by(7).all(|px| {
                        x + px < figure.width()
                            && y + py < figure.height()
                            && figure.get_pixel(x + px, y + py) == picture.get_pixel(px, py)
                    })
                })
            })
            .expect("the picture is in the figure");
        for (px, py, pixel) in picture.enumerate_pixels() {
            assert_eq!(figure.get_pixel(left + px, top + py), pixel, "picture pixel {px}, {py}");
        }
        assert!(left > 0 && top > 0, "labels left and above");
        assert!(inked(&figure, (0, 0, figure.width(), 20)), "a title");
        assert!(inked(&figure, (left, top - 20, 40, 18)), "a column label above the first column");
        assert!(inked(&figure, (0, top, left - 2, 30)), "a row label left of the first row");
        let bar_x = left + picture.width() + 3 * PAD;
        assert_eq!(
            *figure.get_pixel(bar_x + 2, top + 2 * TEXT_PX as u32),
            {
                let rgb = Colormap::Viridis.rgb_of(1.0, [0.5, 1.0]).map(|c| (c * 255.0).round() as u8);
                Rgba([rgb[0], rgb[1], rgb[2], 255])
            },
            "the bar's top is the highest value's colour"
        );
    }

    #[test]
    fn crowded_labels_are_thinned_and_ticks_are_short() {
        assert_eq!(label_stride(50, 100), 1);
        assert_eq!(label_stride(50, 20), 3, "56 pixels of label over 20-pixel columns");
        assert_eq!(label_stride(10, 0), 16);
        assert_eq!(tick_text(0.5), "0.5");
        assert_eq!(tick_text(1.0), "1");
        assert_eq!(tick_text(0.75), "0.75");
        assert_eq!(tick_text(0.0), "0");
    }
}
