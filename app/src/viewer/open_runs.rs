//! Runs open besides the one the views follow, listed like rerun's recordings: a file opened
//! while another is shown joins the list instead of closing it, a click on a run shows it again
//! at the step it was left on, and views that compare runs read them from here. A parked run
//! keeps its document (the memory map of a file, or a live run still filling from the engine)
//! but not its caches, which the run shown needs more.

use std::path::Path;

use super::document::Document;
use super::view::ViewCaches;

/// The most runs kept open besides the one shown; opening one more closes the oldest file.
pub const MAX_PARKED_RUNS: usize = 16;

/// A run open but not shown.
#[derive(Debug)]
pub struct ParkedRun {
    pub document: Document,
    /// The step the cursor was on when the run was left.
    pub step_idx: usize,
    /// What views comparing runs have read of it.
    pub caches: ViewCaches,
}

/// The runs open besides the one shown, oldest first.
#[derive(Debug, Default)]
pub struct OpenRuns {
    parked: Vec<ParkedRun>,
}

impl OpenRuns {
    /// Keeps `document` open, left at `step_idx`. Beyond [`MAX_PARKED_RUNS`] the oldest file
    /// is closed (a live run is never closed this way: it may hold unsaved steps).
    pub fn park(&mut self, document: Document, step_idx: usize) {
        self.parked.push(ParkedRun { document, step_idx, caches: ViewCaches::default() });
        while self.parked.len() > MAX_PARKED_RUNS {
            let Some(oldest_file) = self.parked.iter().position(|run| run.document.live_record().is_none())
            else {
                break;
            };
            self.parked.remove(oldest_file);
        }
    }

    /// Takes out the run at `run_idx` (to show it).
    pub fn take(&mut self, run_idx: usize) -> Option<ParkedRun> {
        (run_idx < self.parked.len()).then(|| self.parked.remove(run_idx))
    }

    /// The index of the run read from `path`, if one is open.
    #[must_use]
    pub fn find_path(&self, path: &Path) -> Option<usize> {
        self.parked.iter().position(|run| run.document.path() == Some(path))
    }

    /// The newest parked live run (the one the engine steps; an older one stopped when the
    /// newer started), if the live run is not the one shown.
    pub fn live_mut(&mut self) -> Option<&mut ParkedRun> {
        self.parked.iter_mut().rev().find(|run| run.document.live_record().is_some())
    }

    /// Takes out the most recently parked run (to show it when the shown one closes).
    pub fn take_newest(&mut self) -> Option<ParkedRun> {
        self.parked.pop()
    }

    #[must_use]
    pub fn runs(&self) -> &[ParkedRun] {
        &self.parked
    }

    pub fn runs_mut(&mut self) -> &mut [ParkedRun] {
        &mut self.parked
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Document {
        Document::open(&crate::sample_trajectory_path()).expect("the sample opens")
    }

    #[test]
    fn parked_runs_are_found_by_path_taken_back_and_bounded() {
        let mut runs = OpenRuns::default();
        for step_idx in 0..=MAX_PARKED_RUNS {
            runs.park(sample(), step_idx);
        }
        assert_eq!(runs.len(), MAX_PARKED_RUNS, "the oldest file closed");
        assert_eq!(runs.runs()[0].step_idx, 1, "the run parked first went");
        let path = crate::sample_trajectory_path();
        assert_eq!(runs.find_path(&path), Some(0));
        assert_eq!(runs.find_path(Path::new("/nowhere.safetensors")), None);
        let taken = runs.take(0).map(|run| run.step_idx);
        assert_eq!(taken, Some(1));
        assert!(runs.take(MAX_PARKED_RUNS).is_none());
        assert_eq!(runs.take_newest().map(|run| run.step_idx), Some(MAX_PARKED_RUNS));
        assert!(runs.live_mut().is_none());
    }
}
