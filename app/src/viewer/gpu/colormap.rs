//! Colormaps for scalar fields (viridis, magma), their CPU lookup, and a legend widget.
//!
//! The tables are matplotlib's 256-entry lists ([`super::colormap_data`]); a value picks its
//! entry as matplotlib's `ListedColormap` does, so colours here match matplotlib's to the byte.
//! The shaders read the same tables (uploaded once), so CPU and GPU cannot drift apart.

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};

use super::colormap_data::{MAGMA, VIRIDIS};

/// Entries per colormap table.
pub const COLORMAP_LEN: usize = 256;

/// The colour of NaN in every view and in `export`: magenta, which neither viridis nor magma
/// holds and no task picture uses. The shaders get it as override constants.
pub const NAN_RGB: [f32; 3] = [1.0, 0.0, 1.0];

/// The colour of +/-infinity in every view and in `export`: cyan, for the same reasons.
pub const INF_RGB: [f32; 3] = [0.0, 1.0, 1.0];

/// A perceptually uniform colormap from matplotlib.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Colormap {
    /// Dark blue to yellow.
    #[default]
    Viridis,
    /// Black to pale yellow through purple and orange.
    Magma,
}

impl Colormap {
    /// Every colormap, in the order of the GPU table.
    pub const ALL: [Self; 2] = [Self::Viridis, Self::Magma];

    /// The name matplotlib gives it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Viridis => "viridis",
            Self::Magma => "magma",
        }
    }

    /// The 256 entries, sRGB in `[0, 1]`.
    #[must_use]
    pub fn table(self) -> &'static [[f32; 3]; COLORMAP_LEN] {
        match self {
            Self::Viridis => &VIRIDIS,
            Self::Magma => &MAGMA,
        }
    }

    /// Where the map starts in the GPU table (`map_idx` in the WGSL).
    pub(super) fn table_idx(self) -> u32 {
        match self {
            Self::Viridis => 0,
            Self::Magma => 1,
        }
    }

    /// The colour at `t` in `[0, 1]`, sRGB in `[0, 1]`: entry `floor(256 t)`, clamped to the
    /// table (below 0 the first colour, from 1 the last), as matplotlib picks it.
    #[must_use]
    pub fn rgb_at(self, t: f32) -> [f32; 3] {
        let entry_idx = (t * COLORMAP_LEN as f32).floor().clamp(0.0, (COLORMAP_LEN - 1) as f32);
        // NaN saturates to 0 in the cast; callers handle NaN before.
        self.table()[entry_idx as usize]
    }

    /// The colour of `value` over `range` (`[min, max]`): `t = (value - min) / (max - min)`
    /// (0 when the range is empty or reversed), NaN as [`NAN_RGB`], +/-infinity as
    /// [`INF_RGB`]. The same arithmetic as `colormap_rgb` in the shaders.
    #[must_use]
    pub fn rgb_of(self, value: f32, [min, max]: [f32; 2]) -> [f32; 3] {
        if value.is_nan() {
            return NAN_RGB;
        }
        if value.is_infinite() {
            return INF_RGB;
        }
        let span = max - min;
        let t = if span > 0.0 { (value - min) / span } else { 0.0 };
        self.rgb_at(t)
    }

    /// A horizontal gradient, `width_px` wide and one pixel tall, from `t = 0` (left) to
    /// `t = 1` (right): the strip a legend shows.
    #[must_use]
    pub fn gradient_image(self, width_px: usize) -> ColorImage {
        let pixels = (0..width_px)
            .map(|x| {
                let t = (x as f32 + 0.5) / width_px as f32;
                color32_from_unit_rgb(self.rgb_at(t))
            })
            .collect();
        ColorImage::new([width_px, 1], pixels)
    }
}

/// An sRGB colour in `[0, 1]` as bytes, rounding to nearest and clamping (NaN to 0).
#[must_use]
pub fn color32_from_unit_rgb(rgb: [f32; 3]) -> Color32 {
    let [r, g, b] = rgb.map(|unit| (unit.clamp(0.0, 1.0) * 255.0).round() as u8);
    Color32::from_rgb(r, g, b)
}

/// Size of the legend's gradient bar, in points.
const LEGEND_BAR_SIZE: egui::Vec2 = egui::vec2(160.0, 12.0);

/// A legend for a colormapped view: `min`, the gradient of `map`, `max`, on one line. Hovering
/// the bar shows the value under the pointer. Returns the bar's response.
pub fn colormap_legend_ui(ui: &mut egui::Ui, map: Colormap, [min, max]: [f32; 2]) -> egui::Response {
    let texture = gradient_texture(ui.ctx(), map);
    ui.horizontal(|ui| {
        ui.label(format_legend_value(min));
        let response = ui.add(
            egui::Image::from_texture(egui::load::SizedTexture::new(texture.id(), LEGEND_BAR_SIZE))
                .sense(egui::Sense::hover()),
        );
        ui.label(format_legend_value(max));
        if let Some(pointer) = response.hover_pos() {
            let t = ((pointer.x - response.rect.left()) / response.rect.width()).clamp(0.0, 1.0);
            let value = min + t * (max - min);
            response.on_hover_text_at_pointer(format!("{}: {}", map.label(), format_legend_value(value)))
        } else {
            response
        }
    })
    .inner
}

/// The gradient strip of `map` as a texture, uploaded once per context and map.
fn gradient_texture(ctx: &egui::Context, map: Colormap) -> TextureHandle {
    let id = egui::Id::unique(("stepscope_colormap_legend", map));
    if let Some(texture) = ctx.data(|data| data.get_temp::<TextureHandle>(id)) {
        return texture;
    }
    let texture = ctx.load_texture(
        format!("colormap_legend_{}", map.label()),
        map.gradient_image(COLORMAP_LEN),
        TextureOptions::LINEAR,
    );
    ctx.data_mut(|data| data.insert_temp(id, texture.clone()));
    texture
}

/// A legend value with about four significant digits; very large or small ones in
/// scientific notation.
#[must_use]
pub fn format_legend_value(value: f32) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        let decimals = (3 - magnitude.log10().floor().max(0.0) as usize).min(3);
        format!("{value:.decimals$}")
    } else {
        format!("{value:.3e}")
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "colours are copied from the tables, not computed: they must be equal bit for bit"
)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_matplotlibs() {
        assert_eq!(Colormap::Viridis.rgb_at(0.0), [0.267_004, 0.004_874, 0.329_415]);
        assert_eq!(Colormap::Viridis.rgb_at(1.0), [0.993_248, 0.906_157, 0.143_936]);
        assert_eq!(Colormap::Magma.rgb_at(0.0), [0.001_462, 0.000_466, 0.013_866]);
        assert_eq!(Colormap::Magma.rgb_at(1.0), [0.987_053, 0.991_438, 0.749_504]);
        // viridis(0.5) in matplotlib is entry 128.
        assert_eq!(Colormap::Viridis.rgb_at(0.5), [0.127_568, 0.566_949, 0.550_556]);
        assert_eq!(color32_from_unit_rgb(Colormap::Viridis.rgb_at(0.5)), Color32::from_rgb(33, 145, 140));
    }

    #[test]
    fn values_outside_the_range_clamp_and_non_finite_values_have_their_own_colours() {
        let range = [-1.0, 1.0];
        for map in Colormap::ALL {
            assert_eq!(map.rgb_of(-5.0, range), map.table()[0]);
            assert_eq!(map.rgb_of(1.0, range), map.table()[255]);
            assert_eq!(map.rgb_of(f32::NAN, range), NAN_RGB);
            assert_eq!(map.rgb_of(f32::INFINITY, range), INF_RGB);
            assert_eq!(map.rgb_of(f32::NEG_INFINITY, range), INF_RGB);
            assert_eq!(map.rgb_of(f32::MAX, range), *map.table().last().unwrap(), "f32::MAX is finite");
            assert_eq!(map.rgb_of(3.0, [2.0, 2.0]), map.table()[0], "an empty range maps to t = 0");
        }
        assert!(!Colormap::ALL.iter().any(|map| map.table().contains(&NAN_RGB)));
        assert!(!Colormap::ALL.iter().any(|map| map.table().contains(&INF_RGB)));
    }

    #[test]
    fn tables_are_smooth_so_no_entry_was_mistyped() {
        // Neighbouring entries differ by under 0.011 and the change itself changes by under
        // 0.001 in matplotlib's tables; a mistyped digit in the first three places breaks this.
        for map in Colormap::ALL {
            let table = map.table();
            for (idx, entries) in table.windows(3).enumerate() {
                for ((before, at), after) in entries[0].iter().zip(&entries[1]).zip(&entries[2]) {
                    let (step, next_step) = (at - before, after - at);
                    assert!(step.abs() < 0.011, "{} entry {}", map.label(), idx + 1);
                    assert!((next_step - step).abs() < 0.001, "{} entry {}", map.label(), idx + 1);
                }
            }
        }
    }

    #[test]
    fn the_gradient_runs_from_the_first_to_the_last_entry() {
        let image = Colormap::Magma.gradient_image(COLORMAP_LEN);
        assert_eq!(image.size, [COLORMAP_LEN, 1]);
        assert_eq!(image.pixels[0], color32_from_unit_rgb(MAGMA[0]));
        assert_eq!(image.pixels[255], color32_from_unit_rgb(MAGMA[255]));
    }

    #[test]
    fn legend_values_keep_four_digits() {
        assert_eq!(format_legend_value(0.0), "0.000");
        assert_eq!(format_legend_value(0.12345), "0.123");
        assert_eq!(format_legend_value(-12.345), "-12.35");
        assert_eq!(format_legend_value(1234.4), "1234");
        assert_eq!(format_legend_value(123_456.0), "1.235e5");
        assert_eq!(format_legend_value(0.000_012), "1.200e-5");
    }
}
