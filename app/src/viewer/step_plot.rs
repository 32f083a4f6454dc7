//! Pieces shared by the plots over the step axis: a series with gaps as plot points, and the
//! step a click on the plot picks.

use egui_plot::{PlotPoint, PlotResponse};

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
    fn gaps_are_skipped() {
        assert_eq!(step_points(&[None, Some(0.5), None, Some(1.0)]), [[1.0, 0.5], [3.0, 1.0]]);
    }
}
