//! Pieces shared by the plots over the step axis: one colour per seed (the same in every plot,
//! picker and label), a legend row above the plot (so that no legend covers data), readable step
//! ticks, a series with gaps as plot points, and the step a click on the plot picks.

use egui::Color32;
use egui_plot::{GridInput, GridMark, PlotPoint, PlotResponse, uniform_grid_spacer};

/// A plot's grid spacer (`egui_plot`'s own alias is private).
pub type GridSpacer = Box<dyn Fn(GridInput) -> Vec<GridMark>>;

/// Seed colours, matplotlib's `tab10` without its grey (which reads as "no colour"), in order.
const SEED_PALETTE: [Color32; 9] = [
    Color32::from_rgb(0x1f, 0x77, 0xb4),
    Color32::from_rgb(0xff, 0x7f, 0x0e),
    Color32::from_rgb(0x2c, 0xa0, 0x2c),
    Color32::from_rgb(0xd6, 0x27, 0x28),
    Color32::from_rgb(0x94, 0x67, 0xbd),
    Color32::from_rgb(0x8c, 0x56, 0x4b),
    Color32::from_rgb(0xe3, 0x77, 0xc2),
    Color32::from_rgb(0xbc, 0xbd, 0x22),
    Color32::from_rgb(0x17, 0xbe, 0xcf),
];

/// The colour of seed `seed_idx` everywhere in the window (repeating after nine seeds).
#[must_use]
pub fn seed_colour(seed_idx: usize) -> Color32 {
    SEED_PALETTE[seed_idx % SEED_PALETTE.len()]
}

/// "■ seed 3" in the seed's colour.
pub fn seed_label(seed_idx: usize) -> egui::RichText {
    egui::RichText::new(format!("■ seed {seed_idx}")).color(seed_colour(seed_idx))
}

/// A legend row for the plot below it: one coloured entry per seed, then `extra` entries.
pub fn seed_legend_ui(ui: &mut egui::Ui, seeds: impl IntoIterator<Item = usize>, extra: &[(&str, Color32)]) {
    ui.horizontal_wrapped(|ui| {
        for seed_idx in seeds {
            ui.label(seed_label(seed_idx));
        }
        for (name, colour) in extra {
            ui.label(egui::RichText::new(format!("■ {name}")).color(*colour));
        }
    });
}

/// `step,<name>,...` then one row per step, a column per named series (empty where a series has
/// no value): the values a plot over the steps draws, for a spreadsheet or a paper's figure.
#[must_use]
pub fn steps_csv(series: &[(String, Vec<Option<f64>>)]) -> String {
    let steps = series.iter().map(|(_, values)| values.len()).max().unwrap_or(0);
    let mut csv = String::from("step");
    for (name, _) in series {
        csv.push(',');
        csv.push_str(&name.replace(',', ";"));
    }
    csv.push('\n');
    for step_idx in 0..steps {
        csv.push_str(&step_idx.to_string());
        for (_, values) in series {
            csv.push(',');
            if let Some(value) = values.get(step_idx).copied().flatten() {
                csv.push_str(&value.to_string());
            }
        }
        csv.push('\n');
    }
    csv
}

/// A "Copy CSV" button that puts `csv()` on the clipboard.
pub fn copy_csv_button(ui: &mut egui::Ui, csv: impl FnOnce() -> String) {
    if ui.small_button("Copy CSV").on_hover_text("The plotted values, one row per step").clicked() {
        ui.ctx().copy_text(csv());
    }
}

/// Step ticks every 1, 5 and 10 steps (the labels follow what fits), for plots over the steps.
#[must_use]
pub fn step_grid() -> GridSpacer {
    uniform_grid_spacer(|input| {
        if input.bounds.1 - input.bounds.0 > 60.0 { [5.0, 10.0, 50.0] } else { [1.0, 5.0, 10.0] }
    })
}

/// Ticks every 0.1 and 0.5 for scores in `[0, 1]`.
#[must_use]
pub fn unit_grid() -> GridSpacer {
    uniform_grid_spacer(|_| [0.1, 0.5, 1.0])
}

/// `(step, value)` points of a per-step series, skipping the steps without a value.
#[must_use]
pub fn step_points(values: &[Option<f64>]) -> Vec<[f64; 2]> {
    values.iter().enumerate().filter_map(|(step, value)| value.map(|v| [step as f64, v])).collect()
}

/// The step under the pointer when the plot was clicked (plots return
/// `plot_ui.pointer_coordinate()`), if it is one of the `num_steps` steps.
#[must_use]
pub fn clicked_step(response: &PlotResponse<Option<PlotPoint>>, num_steps: usize) -> Option<usize> {
    let point = response.inner.filter(|_| response.response.clicked())?;
    let step = point.x.round().max(0.0) as usize;
    (step < num_steps).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_get_distinct_colours_and_none_is_grey() {
        let colours: std::collections::HashSet<Color32> = (0..SEED_PALETTE.len()).map(seed_colour).collect();
        assert_eq!(colours.len(), SEED_PALETTE.len());
        assert!(colours.iter().all(|colour| !(colour.r() == colour.g() && colour.g() == colour.b())));
        assert_eq!(seed_colour(SEED_PALETTE.len()), seed_colour(0));
    }

    #[test]
    fn csv_has_a_row_per_step_and_a_column_per_series() {
        let series = [
            ("seed 0".to_owned(), vec![Some(0.5), Some(1.0)]),
            ("a, b".to_owned(), vec![None, Some(0.25), Some(2.0)]),
        ];
        assert_eq!(steps_csv(&series), "step,seed 0,a; b\n0,0.5,\n1,1,0.25\n2,,2\n");
    }

    #[test]
    fn gaps_are_skipped() {
        assert_eq!(step_points(&[None, Some(0.5), None, Some(1.0)]), [[1.0, 0.5], [3.0, 1.0]]);
    }
}
