//! The terminal progress bar the headless commands (`record`, `train`, `eval`) share.
use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` `unit`s starting at `position` (hidden when `quiet`), with a message slot on
/// the left, elapsed time and an estimate of the time left.
pub fn progress_bar(quiet: bool, len: u64, position: u64, unit: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let template = format!("{{msg:>8}} [{{bar:40}}] {{pos}}/{{len}} {unit}, {{elapsed}} (eta {{eta}})");
    let style = ProgressStyle::with_template(&template)
        .map_or_else(|_| ProgressStyle::default_bar(), |style| style.progress_chars("=> "));
    bar.set_style(style);
    bar.set_position(position);
    bar.reset_eta();
    bar
}
