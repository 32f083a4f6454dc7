//! The sweep table: one row per run of a folder, sortable by any column (click its header, again
//! to reverse), a click on a run opens it. Rows fill in while the background thread reads.

use std::cmp::Ordering;

use super::command::{AppCommand, CommandQueue};
use super::sweep::{Sweep, SweepRow};

/// The most characters of a prompt the table shows (the whole one is in the run's header).
const MAX_WHAT_CHARS: usize = 60;

/// The table's columns, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepColumn {
    Run,
    What,
    Seeds,
    Steps,
    Latents,
    FinalScore,
    Solved,
    CommitStep,
}

impl SweepColumn {
    const ALL: [Self; 8] = [
        Self::Run,
        Self::What,
        Self::Seeds,
        Self::Steps,
        Self::Latents,
        Self::FinalScore,
        Self::Solved,
        Self::CommitStep,
    ];

    fn header(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::What => "prompt or task",
            Self::Seeds => "seeds",
            Self::Steps => "steps",
            Self::Latents => "latents (C x F x H x W)",
            Self::FinalScore => "final score",
            Self::Solved => "solved seeds",
            Self::CommitStep => "commit step",
        }
    }

    fn hover(self) -> &'static str {
        match self {
            Self::FinalScore => "Task runs: the task's score of x0_hat at the last step, mean over seeds",
            Self::Solved => "Task runs: how many seeds end solved",
            Self::CommitStep => {
                "Task runs: the median over seeds of the step from which x0_hat stays solved \
                 (seeds that end unsolved have none)"
            }
            _ => "Click to sort, again to reverse",
        }
    }

    /// Orders two rows by this column; rows without a value sort last.
    fn compare(self, a: &SweepRow, b: &SweepRow) -> Ordering {
        fn last_if_none<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        match self {
            Self::Run => a.name.cmp(&b.name),
            Self::What => a.what.cmp(&b.what),
            Self::Seeds => a.seeds.cmp(&b.seeds),
            Self::Steps => a.steps.cmp(&b.steps),
            Self::Latents => a.latent_shape.cmp(&b.latent_shape),
            Self::FinalScore => last_if_none(a.final_score, b.final_score),
            Self::Solved => last_if_none(a.solved_seeds, b.solved_seeds),
            Self::CommitStep => last_if_none(a.median_commit_step, b.median_commit_step),
        }
    }

    fn cell(self, row: &SweepRow) -> String {
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
        match self {
            Self::Run => row.name.clone(),
            Self::What if row.what.chars().count() > MAX_WHAT_CHARS => {
                format!("{}…", row.what.chars().take(MAX_WHAT_CHARS).collect::<String>())
            }
            Self::What => row.what.clone(),
            Self::Seeds => row.seeds.to_string(),
            Self::Steps => row.steps.to_string(),
            Self::Latents => {
                let [c, f, h, w] = row.latent_shape;
                format!("{c} x {f} x {h} x {w}")
            }
            Self::FinalScore => or_dash(row.final_score.map(|score| format!("{score:.3}"))),
            Self::Solved => or_dash(row.solved_seeds.map(|solved| format!("{solved} / {}", row.seeds))),
            Self::CommitStep => or_dash(row.median_commit_step.map(|step| step.to_string())),
        }
    }
}

/// A sweep shown in its window, with the order of its rows.
#[derive(Debug)]
pub struct SweepWindow {
    pub sweep: Sweep,
    sort: (SweepColumn, bool),
    pub open: bool,
}

impl SweepWindow {
    #[must_use]
    pub fn new(sweep: Sweep) -> Self {
        Self { sweep, sort: (SweepColumn::Run, true), open: true }
    }

    /// Sorts the rows by `column`, ascending or not (a stable sort: ties keep their order).
    pub fn sort_by(&mut self, column: SweepColumn, ascending: bool) {
        self.sort = (column, ascending);
        self.sweep.rows.sort_by(|a, b| {
            let order = column.compare(a, b);
            if ascending { order } else { order.reverse() }
        });
    }

    /// The window; a click on a run pushes [`AppCommand::Open`].
    pub fn ui(&mut self, ctx: &egui::Context, commands: &mut CommandQueue) {
        if self.sweep.poll() {
            let (column, ascending) = self.sort;
            self.sort_by(column, ascending);
        }
        let title = format!("Sweep: {}", self.sweep.dir.display());
        let mut open = self.open;
        egui::Window::new(title)
            .id(egui::Id::unique("sweep_window"))
            .open(&mut open)
            .default_size([1180.0, 420.0])
            .vscroll(false)
            .show(ctx, |ui| self.contents_ui(ui, commands));
        self.open = open;
    }

    fn contents_ui(&mut self, ui: &mut egui::Ui, commands: &mut CommandQueue) {
        let sweep = &self.sweep;
        ui.horizontal(|ui| {
            if !sweep.is_finished() {
                ui.spinner();
            }
            ui.label(format!("{} of {} runs read", sweep.done(), sweep.total));
            if sweep.left_out > 0 {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("({} more files left out: the first {} by name)", sweep.left_out, sweep.total),
                );
            }
        });
        if sweep.total == 0 {
            ui.label("This folder holds no trajectory files (.safetensors).");
        }
        let mut sort = None;
        egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
            egui::Grid::new("sweep_table").striped(true).num_columns(SweepColumn::ALL.len()).show(ui, |ui| {
                for column in SweepColumn::ALL {
                    let arrow = match self.sort {
                        (sorted, true) if sorted == column => " ⏶",
                        (sorted, false) if sorted == column => " ⏷",
                        _ => "",
                    };
                    let header =
                        ui.button(egui::RichText::new(format!("{}{arrow}", column.header())).strong());
                    if header.on_hover_text(column.hover()).clicked() {
                        let ascending = !(self.sort.0 == column && self.sort.1);
                        sort = Some((column, ascending));
                    }
                }
                ui.end_row();
                for row in &self.sweep.rows {
                    for column in SweepColumn::ALL {
                        let text = column.cell(row);
                        if column == SweepColumn::Run {
                            let link = ui.link(text).on_hover_text(format!("Open {}", row.path.display()));
                            if link.clicked() {
                                commands.push(AppCommand::Open(row.path.clone()));
                            }
                        } else {
                            ui.label(text);
                        }
                    }
                    ui.end_row();
                }
            });
            for failure in &self.sweep.failures {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("{}: {}", failure.path.display(), failure.message),
                );
            }
        });
        if let Some((column, ascending)) = sort {
            self.sort_by(column, ascending);
        }
    }
}
