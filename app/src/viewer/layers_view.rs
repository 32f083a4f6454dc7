//! The layers view: what every captured transformer block holds at the current step, as a
//! layer x frame grid of small pictures (the logit-lens image, token norms through a colormap,
//! or the first three principal components as RGB), and a step x frame heatmap of a statistic
//! over the whole run, with the current step marked.

use egui::{Color32, Stroke, Vec2};
use serde::{Deserialize, Serialize};
use stepscope_engine::analysis::StepFrameStat;
use stepscope_engine::trajectory::{CaptureKind, StepTensor, TensorName};

use super::command::AppCommand;
use super::document::Document;
use super::gpu::{self, Colormap, GpuImage, ImageStyle};
use super::stats_cache::StatsCache;
use super::view::{Cursor, View, ViewCaches, ViewContext, restore_saved, to_saved};

/// Largest and smallest side of a thumbnail, in points.
const THUMB_SIDE: std::ops::RangeInclusive<f32> = 24.0..=160.0;
/// Room a layer row keeps for its label, in points.
const ROW_LABEL: f32 = 80.0;
/// Room a layer row also keeps for the token norm's legend, in points.
const ROW_LEGEND: f32 = 240.0;
/// Height of one step's row in the step x frame heatmap, in points.
const HEATMAP_ROW: f32 = 10.0;
/// Room the heatmap leaves at its right for its colour bar and the bar's end labels, in points.
const HEATMAP_LEGEND: f32 = 270.0;

/// Which picture of a layer the grid shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LayerPicture {
    /// The layer's prediction of the clean video, `x_t - sigma * v_l` (guided as the sampler
    /// guides), drawn like `x0_hat`: what each layer would have the step produce.
    #[default]
    X0,
    /// The block's output sent through the output head (logit lens): a velocity, not a picture.
    Decoded,
    /// Each token's hidden-state norm, coloured.
    TokenNorm,
    /// The first three principal components of the hidden states as RGB.
    Pca3,
}

impl LayerPicture {
    const ALL: [Self; 4] = [Self::X0, Self::Decoded, Self::TokenNorm, Self::Pca3];

    fn kind(self) -> CaptureKind {
        match self {
            Self::X0 => CaptureKind::X0,
            Self::Decoded => CaptureKind::Decoded,
            Self::TokenNorm => CaptureKind::TokenNorm,
            Self::Pca3 => CaptureKind::Pca3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::X0 => "x0 prediction",
            Self::Decoded => "logit lens (velocity)",
            Self::TokenNorm => "token norm",
            Self::Pca3 => "PCA to RGB",
        }
    }
}

/// What the step x frame heatmap measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HeatmapStat {
    /// RMS change of `x0_hat` since the step before.
    #[default]
    X0Change,
    /// Mean token norm at a captured layer.
    TokenNorm { layer_idx: usize },
}

/// The layers view's persisted choices.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LayersSettings {
    pub picture: LayerPicture,
    pub heatmap: HeatmapStat,
}

/// The Layers tab: every captured block at the current step, and a step x frame heatmap.
#[derive(Debug, Default)]
pub struct LayersView {
    settings: LayersSettings,
}

impl View for LayersView {
    fn id(&self) -> &'static str {
        "layers"
    }

    fn title(&self) -> &'static str {
        "Layers"
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut ViewContext<'_>) {
        layers_view_ui(ui, cx, &mut self.settings);
    }

    fn save_state(&self) -> Option<String> {
        to_saved(&self.settings)
    }

    fn load_state(&mut self, saved: &str) {
        restore_saved(&mut self.settings, saved);
    }
}

/// The grid for the current step of the cursor's seed, then the heatmap.
fn layers_view_ui(ui: &mut egui::Ui, cx: &mut ViewContext<'_>, settings: &mut LayersSettings) {
    let (document, colormap) = (cx.document, cx.colormap);
    let Cursor { seed_idx, step_idx, .. } = cx.cursor;
    let captures = &document.manifest().captures;
    if captures.layers.is_empty() {
        ui.label("This run captured no layers. Record with --capture (e.g. x0,token_norm,pca3@all).");
        return;
    }
    // A file without the chosen picture (an older one has no x0 captures) shows one it has.
    if !captures.kinds.contains(&settings.picture.kind())
        && let Some(captured) =
            LayerPicture::ALL.into_iter().find(|picture| captures.kinds.contains(&picture.kind()))
    {
        settings.picture = captured;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Picture");
        for picture in LayerPicture::ALL {
            ui.add_enabled_ui(captures.kinds.contains(&picture.kind()), |ui| {
                ui.radio_value(&mut settings.picture, picture, picture.label())
                    .on_disabled_hover_text("Not captured in this run");
            });
        }
        ui.separator();
        ui.label("Colormap");
        for map in Colormap::ALL {
            if ui.radio(colormap == map, map.label()).clicked() {
                cx.commands.push(AppCommand::SetColormap(map));
            }
        }
    });
    if let Some(&first) = captures.query_tokens.first()
        && captures.kinds.contains(&CaptureKind::SelfAttn)
    {
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "This run stores the attention of {} query tokens at layers {:?}.",
                captures.query_tokens.len(),
                captures.layers
            ));
            if ui.button("Open the attention inspector").clicked() {
                cx.commands.push(AppCommand::InspectAttention(first));
            }
        });
    }
    ui.separator();
    let caches = &mut *cx.caches;
    egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        egui::CollapsingHeader::new(format!("Layer x frame at step {step_idx}")).default_open(true).show(
            ui,
            |ui| {
                layer_grid_ui(ui, document, caches, (settings, colormap), (seed_idx, step_idx));
            },
        );
        egui::CollapsingHeader::new("Step x frame").default_open(true).show(ui, |ui| {
            heatmap_ui(ui, document, &mut caches.stats, (settings, colormap), (seed_idx, step_idx));
        });
    });
}

fn layer_grid_ui(
    ui: &mut egui::Ui,
    document: &Document,
    caches: &mut ViewCaches,
    (settings, colormap): (&LayersSettings, Colormap),
    (seed_idx, step_idx): (usize, usize),
) {
    let ViewCaches { tensors, frame_levels, .. } = caches;
    let manifest = document.manifest();
    let Some(owner) = manifest.capture_owner(seed_idx, step_idx) else {
        ui.label(format!("No captures at step {step_idx} of seed {seed_idx}."));
        return;
    };
    let kind = settings.picture.kind();
    // Grid cells only know their own width, so the row width is taken here.
    let row_width = ui.available_width();
    egui::Grid::new("layer_grid").spacing(Vec2::splat(4.0)).min_col_width(0.0).show(ui, |ui| {
        for &layer_idx in &manifest.captures.layers {
            ui.label(format!("layer {layer_idx}"));
            let name = TensorName::capture(owner, step_idx, layer_idx, kind);
            match tensors.get(ui.ctx(), document, name) {
                Ok(tensor) => {
                    let tensor = &tensor;
                    let [_, frames, height, width] = tensor.shape();
                    let legend = if settings.picture == LayerPicture::TokenNorm { ROW_LEGEND } else { 0.0 };
                    let (stride, side) = thumb_layout(row_width - ROW_LABEL - legend, frames, width);
                    let style = match settings.picture {
                        LayerPicture::X0 | LayerPicture::Decoded => ImageStyle::default_for(tensor),
                        LayerPicture::Pca3 => ImageStyle::normalised_for(tensor),
                        LayerPicture::TokenNorm => ImageStyle::Colormap {
                            channel_idx: 0,
                            map: colormap,
                            range: tensor.channel_range(0).unwrap_or([0.0, 1.0]),
                        },
                    };
                    let size = Vec2::new(width as f32, height as f32) * side;
                    for frame_idx in (0..frames).step_by(stride) {
                        let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
                        if ui.is_rect_visible(rect) {
                            frame_levels.paint(ui, (tensor, frame_idx, &style), rect);
                        }
                        response.on_hover_text(format!("layer {layer_idx}, frame {frame_idx}"));
                    }
                    if stride > 1 {
                        ui.label(format!("every {stride}th frame")).on_hover_text(format!(
                            "{frames} frames do not fit the view at {} points each",
                            THUMB_SIDE.start()
                        ));
                    }
                    if settings.picture == LayerPicture::TokenNorm
                        && let Some(range) = tensor.channel_range(0)
                    {
                        gpu::colormap_legend_ui(ui, colormap, range);
                    }
                }
                Err(missing) => missing.show(ui),
            }
            ui.end_row();
        }
    });
}

/// `(stride, points per tensor pixel)`: every `stride`-th of `frames` thumbnails, at a size
/// that fills `room` points; the stride grows only when all frames would not fit at the
/// smallest thumbnail side.
fn thumb_layout(room: f32, frames: usize, width: usize) -> (usize, f32) {
    let room = room.max(*THUMB_SIDE.start());
    let fit = ((room / (THUMB_SIDE.start() + 4.0)).floor() as usize).max(1);
    let stride = frames.div_ceil(fit).max(1);
    let shown = frames.div_ceil(stride).max(1);
    let side = (room / shown as f32 - 4.0).clamp(*THUMB_SIDE.start(), *THUMB_SIDE.end());
    (stride, side / width.max(1) as f32)
}

fn heatmap_ui(
    ui: &mut egui::Ui,
    document: &Document,
    stats: &mut StatsCache,
    (settings, colormap): (&mut LayersSettings, Colormap),
    (seed_idx, step_idx): (usize, usize),
) {
    let captures = &document.manifest().captures;
    ui.horizontal_wrapped(|ui| {
        ui.label("Statistic");
        ui.radio_value(&mut settings.heatmap, HeatmapStat::X0Change, "x0_hat change since the last step");
        if captures.kinds.contains(&CaptureKind::TokenNorm) {
            for &layer_idx in &captures.layers {
                let stat = HeatmapStat::TokenNorm { layer_idx };
                ui.radio_value(&mut settings.heatmap, stat, format!("token norm, layer {layer_idx}"));
            }
        }
    });
    let stat = match settings.heatmap {
        HeatmapStat::X0Change => StepFrameStat::Change { tensor: StepTensor::X0 },
        HeatmapStat::TokenNorm { layer_idx } => StepFrameStat::TokenNorm { layer_idx },
    };
    let Some(heatmap) = stats.heatmap(document, seed_idx, stat).or_show(ui) else { return };
    let map = &heatmap.map;
    let Some(range) = map.range() else {
        ui.label("Nothing to show yet: the map needs two steps in a row.");
        return;
    };
    ui.horizontal(|ui| {
        let cell_width =
            ((ui.available_width() - HEATMAP_LEGEND) / map.frames.max(1) as f32).clamp(16.0, 96.0);
        let size = Vec2::new(cell_width * map.frames as f32, HEATMAP_ROW * map.steps as f32);
        let style = ImageStyle::Colormap { channel_idx: 0, map: colormap, range };
        let Some(image) = GpuImage::new(heatmap.tensor.clone(), 0, style) else { return };
        let response = gpu::image_ui(ui, image, size);
        // The current step's row, outlined.
        let row_top = response.rect.top() + HEATMAP_ROW * step_idx as f32;
        let row = egui::Rect::from_min_size(
            egui::pos2(response.rect.left(), row_top),
            Vec2::new(size.x, HEATMAP_ROW),
        );
        ui.painter().rect_stroke(row, 0.0, Stroke::new(1.5, Color32::WHITE), egui::StrokeKind::Outside);
        if let Some(pointer) = response.hover_pos() {
            let local = pointer - response.rect.min;
            let (hover_step, hover_frame) =
                ((local.y / HEATMAP_ROW) as usize, (local.x / cell_width) as usize);
            let value =
                map.value(hover_step, hover_frame).map_or_else(|| "none".to_owned(), |v| format!("{v:.4}"));
            response.on_hover_text_at_pointer(format!("step {hover_step}, frame {hover_frame}: {value}"));
        }
        ui.vertical(|ui| {
            ui.label(format!("rows: steps 0-{}, columns: frames", map.steps.saturating_sub(1)));
            gpu::colormap_legend_ui(ui, colormap, range);
            if settings.heatmap == HeatmapStat::X0Change {
                // NaN draws magenta everywhere; here it means a step with no step before it.
                ui.weak("magenta: no value (no step before it, or not taken yet)");
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_row_and_stride_only_when_they_must() {
        // Wan2.1 at 480p: 21 latent frames 104 wide, in a 1280-point window's centre.
        let (stride, scale) = thumb_layout(960.0, 21, 104);
        assert_eq!(stride, 1);
        let side = scale * 104.0;
        assert!(21.0 * (side + 4.0) <= 960.0 + 1e-3 && side >= *THUMB_SIDE.start(), "{side}");
        // 81 frames in a narrow tile: every k-th frame, still fitting.
        let (stride, scale) = thumb_layout(180.0, 81, 832);
        assert!(stride > 1);
        assert!(81_usize.div_ceil(stride) as f32 * (scale * 832.0 + 4.0) <= 180.0 + 1e-3);
        // A small video is never drawn larger than the largest thumbnail.
        let (stride, scale) = thumb_layout(2000.0, 5, 12);
        assert_eq!(stride, 1);
        assert!(scale * 12.0 <= *THUMB_SIDE.end());
    }
}
