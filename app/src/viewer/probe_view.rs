//! The probe window: a `stepscope probe` result as a layer x step heatmap of probe accuracy
//! (layers up, steps across, through the colormap shader), the value under the pointer, and a
//! click that moves the step cursor to that step.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use egui::{Color32, Stroke, Vec2};
use stepscope_engine::analysis::{ProbeRecord, ProbeResult, read_probe_file};

use super::gpu::{self, Colormap, GpuImage, GpuTensor, ImageKey, ImageStyle};

const CELL_HEIGHT: f32 = 22.0;
/// Room left of the map for the layer labels.
const LABEL_WIDTH: f32 = 28.0;

/// "L0".. beside the rows (layer 0 at the bottom) and step numbers under every fifth column.
fn axis_labels(
    ui: &egui::Ui,
    labels: egui::Rect,
    map: egui::Rect,
    (steps, layers): (usize, usize),
    cell_width: f32,
) {
    let painter = ui.painter();
    let font = egui::FontId::monospace(11.0);
    let color = ui.visuals().text_color();
    for layer in 0..layers {
        let y = map.top() + CELL_HEIGHT * ((layers - 1 - layer) as f32 + 0.5);
        painter.text(
            egui::pos2(labels.right() - 4.0, y),
            egui::Align2::RIGHT_CENTER,
            format!("L{layer}"),
            font.clone(),
            color,
        );
    }
    for step in (0..steps).step_by(5) {
        let x = map.left() + cell_width * (step as f32 + 0.5);
        painter.text(
            egui::pos2(x, map.bottom() + 2.0),
            egui::Align2::CENTER_TOP,
            step.to_string(),
            font.clone(),
            color,
        );
    }
}

/// Which accuracy the map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Balanced,
    Plain,
    /// Balanced accuracy minus the stronger baseline at the step.
    OverBaseline,
}

/// The colour range of the map of accuracy over the baseline.
pub const OVER_BASELINE_RANGE: [f32; 2] = [-0.25, 0.25];

/// An open probe result.
#[derive(Debug)]
pub struct ProbeView {
    path: PathBuf,
    record: ProbeRecord,
    result: ProbeResult,
    /// `[1, 1, layers, steps]`, the last layer in the first row: balanced and plain accuracy.
    balanced: GpuTensor,
    plain: GpuTensor,
    /// Balanced accuracy minus the stronger baseline, where the file has the baselines.
    over_baseline: Option<(GpuTensor, Vec<f64>)>,
    metric: Metric,
    pub open: bool,
}

/// What the probe window did this frame.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOutput {
    /// A step clicked in the heatmap.
    pub clicked_step: Option<usize>,
    /// Its "Save as PNG…" button was clicked.
    pub save_clicked: bool,
    /// Where the window was drawn (`None` when collapsed or closed).
    pub window_rect: Option<egui::Rect>,
}

impl ProbeView {
    /// Reads the probe result at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let (record, result) = read_probe_file(path)?;
        let grid = |values: &[f64], name: &str| {
            let (steps, layers) = (result.steps, result.layers);
            let rows: Vec<f32> = (0..layers)
                .rev()
                .flat_map(|layer| (0..steps).map(move |step| values[step * layers + layer] as f32))
                .collect();
            GpuTensor::new(ImageKey::of(&(path, name)), rows, [1, 1, layers, steps])
                .context("the probe result is empty")
        };
        let balanced = grid(&result.balanced_accuracy, "balanced")?;
        let plain = grid(&result.accuracy, "plain")?;
        let over_baseline = result
            .over_baseline()
            .map(|values| grid(&values, "over baseline").map(|tensor| (tensor, values)))
            .transpose()?;
        Ok(Self {
            path: path.to_owned(),
            record,
            result,
            balanced,
            plain,
            over_baseline,
            metric: Metric::Balanced,
            open: true,
        })
    }

    /// Draws the window; returns what the user did in it.
    pub fn ui(&mut self, ctx: &egui::Context, colormap: Colormap, step_idx: Option<usize>) -> ProbeOutput {
        let mut clicked_step = None;
        let mut save_clicked = false;
        let mut open = self.open;
        let title = format!("Linear probes: {} {}x{}", self.record.task, self.record.size, self.record.size);
        let shown = egui::Window::new(title).open(&mut open).default_width(560.0).show(ctx, |ui| {
            clicked_step = self.contents_ui(ui, colormap, step_idx);
            save_clicked =
                ui.button("Save as PNG…").on_hover_text("This window as shown, for a figure").clicked();
        });
        self.open = open;
        ProbeOutput { clicked_step, save_clicked, window_rect: shown.map(|shown| shown.response.rect) }
    }

    /// A file name for a picture of this window.
    #[must_use]
    pub fn default_picture_name(&self) -> String {
        format!("probe-{}{}.png", self.record.task, self.record.size)
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        colormap: Colormap,
        step_idx: Option<usize>,
    ) -> Option<usize> {
        let (record, result) = (&self.record, &self.result);
        let instances = match record.split.as_str() {
            "held-out" => "distinct held-out puzzles",
            "all" => "every seed (not held out)",
            _ => "instances (split not recorded)",
        };
        let description = format!(
            "Frame {} tokens of {instances}: fitted on seeds {}..{} ({} tokens), tested on {}..{} \
             ({} tokens); majority class {:.3}. Sampler: {} {} steps, shift {}; ridge {}.",
            record.frame,
            record.train_seeds[0],
            record.train_seeds[1],
            record.train_tokens,
            record.test_seeds[0],
            record.test_seeds[1],
            record.test_tokens,
            record.chance,
            record.scheduler,
            record.sampler_steps,
            record.shift,
            record.ridge
        );
        ui.add(egui::Label::new(description).wrap()).on_hover_text(self.path.display().to_string());
        ui.label(baselines_text(result));
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.metric, Metric::Balanced, "balanced accuracy");
            ui.radio_value(&mut self.metric, Metric::Plain, "accuracy");
            ui.add_enabled_ui(self.over_baseline.is_some(), |ui| {
                ui.radio_value(&mut self.metric, Metric::OverBaseline, "over the stronger baseline")
                    .on_hover_text("Balanced accuracy minus the better of the layout and x0_hat readout baselines at that step")
                    .on_disabled_hover_text("This result file has no baselines (written by an older stepscope probe)");
            });
        });
        let (tensor, values, range) = match (self.metric, &self.over_baseline) {
            (Metric::OverBaseline, Some((tensor, values))) => (tensor, values, OVER_BASELINE_RANGE),
            (Metric::Plain, _) => (&self.plain, &result.accuracy, [result.chance.min(0.999) as f32, 1.0]),
            _ => (&self.balanced, &result.balanced_accuracy, [0.5, 1.0]),
        };
        let (steps, layers) = (result.steps, result.layers);
        let mut clicked = None;
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                let cell_width =
                    ((ui.available_width() - 160.0 - LABEL_WIDTH) / steps.max(1) as f32).clamp(10.0, 40.0);
                let size = Vec2::new(cell_width * steps as f32, CELL_HEIGHT * layers as f32);
                let style = ImageStyle::Colormap { channel_idx: 0, map: colormap, range };
                let Some(image) = GpuImage::new(tensor.clone(), 0, style) else { return };
                let response = ui
                    .horizontal(|ui| {
                        let (labels, _) =
                            ui.allocate_exact_size(Vec2::new(LABEL_WIDTH, size.y), egui::Sense::hover());
                        let response = gpu::image_ui(ui, image, size).interact(egui::Sense::click());
                        axis_labels(ui, labels, response.rect, (steps, layers), cell_width);
                        response
                    })
                    .inner;
                if let Some(step) = step_idx.filter(|&step| step < steps) {
                    let column = egui::Rect::from_min_size(
                        response.rect.min + Vec2::new(cell_width * step as f32, 0.0),
                        Vec2::new(cell_width, size.y),
                    );
                    ui.painter().rect_stroke(
                        column,
                        0.0,
                        Stroke::new(1.5, Color32::WHITE),
                        egui::StrokeKind::Outside,
                    );
                }
                if let Some(pointer) = response.hover_pos() {
                    let local = pointer - response.rect.min;
                    let step = ((local.x / cell_width) as usize).min(steps - 1);
                    let layer = layers - 1 - ((local.y / CELL_HEIGHT) as usize).min(layers - 1);
                    let value = values[step * layers + layer];
                    let response = response.clone();
                    response.on_hover_text_at_pointer(format!("step {step}, layer {layer}: {value:.3}"));
                }
                if response.clicked()
                    && let Some(pointer) = response.interact_pointer_pos()
                {
                    clicked =
                        Some((((pointer.x - response.rect.left()) / cell_width) as usize).min(steps - 1));
                }
                ui.add_space(14.0);
                ui.label("denoising step (across) x layer (up); click a column to go to that step");
            });
            gpu::colormap_legend_ui(ui, colormap, range);
        });
        clicked
    }
}

/// The baselines in one line: the layout's balanced accuracy and the `x0_hat` readout's first and last.
fn baselines_text(result: &ProbeResult) -> String {
    let layout =
        result.layout_balanced_accuracy.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3}"));
    let readout = match (result.x0_balanced_accuracy.first(), result.x0_balanced_accuracy.last()) {
        (Some(first), Some(last)) => {
            format!("{first:.3} (step 0) to {last:.3} (step {})", result.x0_balanced_accuracy.len() - 1)
        }
        _ => "not measured".to_owned(),
    };
    format!(
        "Baselines (balanced accuracy): layout only {layout}; the step's own x0_hat, read linearly, {readout}"
    )
}
