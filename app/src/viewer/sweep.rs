//! A sweep: a folder of trajectory files, summarised one row per run (prompt or task, seeds,
//! steps, and for a run that solves a built-in task its final score and commit step) on a
//! named background thread, so that a folder of hundreds of runs never stalls the window.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TryRecvError};
use stepscope_engine::analysis::{commit_step, is_probe_file, task_instance, task_scores};
use stepscope_engine::trajectory::TrajectoryReader;

/// The most files of one folder summarised (a folder with more shows the first ones by name
/// and says so).
pub const MAX_SWEEP_FILES: usize = 5000;

/// Rows summarised but not yet taken in by the window (the thread waits beyond that).
const SUMMARIES_IN_FLIGHT: usize = 64;

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub path: PathBuf,
    /// The file name.
    pub name: String,
    /// The prompt, or the task and its instance.
    pub what: String,
    pub seeds: usize,
    pub steps: usize,
    /// `[C, F, H, W]` of the latents.
    pub latent_shape: [usize; 4],
    /// For a task run: the mean over seeds of the score at the last step, in `[0, 1]`.
    pub final_score: Option<f64>,
    /// For a task run: how many seeds end solved.
    pub solved_seeds: Option<usize>,
    /// For a task run: the median commit step over the seeds that commit (see
    /// [`commit_step`]); `None` when none does.
    pub median_commit_step: Option<usize>,
}

/// A file of the folder that could not be summarised, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepFailure {
    pub path: PathBuf,
    pub message: String,
}

/// The trajectory files of `dir` (`*.safetensors` that are not probe results), sorted by name,
/// at most [`MAX_SWEEP_FILES`]; the second value says how many more there were.
pub fn sweep_files(dir: &Path) -> Result<(Vec<PathBuf>, usize)> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing the folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "safetensors"))
        .collect();
    files.sort();
    let more = files.len().saturating_sub(MAX_SWEEP_FILES);
    files.truncate(MAX_SWEEP_FILES);
    files.retain(|path| !is_probe_file(path));
    Ok((files, more))
}

/// Reads the header of the trajectory at `path` and, for a task run, scores every seed's
/// `x0_hat` at every step.
pub fn summarize_run(path: &Path) -> Result<SweepRow> {
    let reader = TrajectoryReader::open(path)?;
    let manifest = reader.manifest();
    let conditioning = &manifest.conditioning;
    let what = match (&conditioning.task, &conditioning.prompt) {
        (Some(task), _) => format!("{} (instance {})", task.name, task.seed),
        (None, Some(prompt)) => prompt.clone(),
        (None, None) => String::new(),
    };
    let mut row = SweepRow {
        path: path.to_owned(),
        name: path
            .file_name()
            .map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into()),
        what,
        seeds: manifest.seeds.len(),
        steps: manifest.schedule.steps,
        latent_shape: manifest.latent_shape,
        final_score: None,
        solved_seeds: None,
        median_commit_step: None,
    };
    let Some(task) = &conditioning.task else { return Ok(row) };
    let instance = task_instance(task)?;
    let mut finals = Vec::new();
    let mut commits = Vec::new();
    let mut solved = 0;
    for seed_idx in 0..row.seeds {
        let scores = task_scores(&reader, seed_idx, &instance)?;
        if let Some(Some(last)) = scores.last() {
            finals.push(f64::from(last.value));
            solved += usize::from(last.solved);
        }
        commits.extend(commit_step(&scores));
    }
    if !finals.is_empty() {
        row.final_score = Some(finals.iter().sum::<f64>() / finals.len() as f64);
        row.solved_seeds = Some(solved);
    }
    commits.sort_unstable();
    row.median_commit_step = commits.get(commits.len().saturating_sub(1) / 2).copied();
    Ok(row)
}

/// What the summarising thread sends: a row, or a file it could not read.
type Summary = Result<SweepRow, SweepFailure>;

/// A folder being summarised, and the rows so far.
#[derive(Debug)]
pub struct Sweep {
    pub dir: PathBuf,
    pub rows: Vec<SweepRow>,
    pub failures: Vec<SweepFailure>,
    /// How many files the folder holds (up to [`MAX_SWEEP_FILES`]) and how many more were left out.
    pub total: usize,
    pub left_out: usize,
    receiver: Receiver<Summary>,
    thread: Option<JoinHandle<()>>,
}

impl Sweep {
    /// Lists `dir` and starts summarising its files on the thread `stepscope-sweep`; `wake` is
    /// called after each file (to repaint the window).
    pub fn start(dir: &Path, wake: impl Fn() + Send + 'static) -> Result<Self> {
        let (files, left_out) = sweep_files(dir)?;
        let total = files.len();
        let (sender, receiver) = crossbeam_channel::bounded(SUMMARIES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("stepscope-sweep".to_owned())
            .spawn(move || {
                for path in files {
                    let summary = summarize_run(&path)
                        .map_err(|err| SweepFailure { path: path.clone(), message: format!("{err:#}") });
                    if sender.send(summary).is_err() {
                        return;
                    }
                    wake();
                }
            })
            .context("starting the thread that reads the sweep")?;
        Ok(Self {
            dir: dir.to_owned(),
            rows: Vec::new(),
            failures: Vec::new(),
            total,
            left_out,
            receiver,
            thread: Some(thread),
        })
    }

    /// Takes in the rows summarised since the last call; returns whether any arrived.
    pub fn poll(&mut self) -> bool {
        let mut arrived = false;
        loop {
            match self.receiver.try_recv() {
                Ok(Ok(row)) => self.rows.push(row),
                Ok(Err(failure)) => self.failures.push(failure),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if let Some(thread) = self.thread.take() {
                        let _joined = thread.join();
                    }
                    break;
                }
            }
            arrived = true;
        }
        arrived
    }

    /// How many files have been read (or failed) so far.
    #[must_use]
    pub fn done(&self) -> usize {
        self.rows.len() + self.failures.len()
    }

    /// Whether every file has been read.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.done() >= self.total
    }

    /// Waits until every file is read (tests, benchmarks).
    pub fn wait(&mut self) {
        while !self.is_finished() {
            match self.receiver.recv() {
                Ok(Ok(row)) => self.rows.push(row),
                Ok(Err(failure)) => self.failures.push(failure),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_runs_is_summarised_on_its_thread_and_bad_files_are_named() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let sample = crate::sample_trajectory_path();
        std::fs::copy(&sample, dir.path().join("b_run.safetensors")).expect("copy the sample");
        std::fs::copy(&sample, dir.path().join("a_run.safetensors")).expect("copy the sample");
        std::fs::write(dir.path().join("broken.safetensors"), b"not a trajectory").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"ignored").expect("write");
        let mut sweep = Sweep::start(dir.path(), || {}).expect("the sweep starts");
        assert_eq!((sweep.total, sweep.left_out), (3, 0));
        sweep.wait();
        let names: Vec<&str> = sweep.rows.iter().map(|row| row.name.as_str()).collect();
        assert_eq!(names, ["a_run.safetensors", "b_run.safetensors"], "in name order");
        assert_eq!(sweep.rows[0].seeds, 2);
        assert_eq!(sweep.rows[0].steps, 12);
        assert_eq!(sweep.rows[0].final_score, None, "the sample solves no task");
        assert_eq!(sweep.failures.len(), 1);
        assert!(sweep.failures[0].path.ends_with("broken.safetensors"));
        assert!(sweep.is_finished());
    }

    #[test]
    fn listing_a_missing_folder_says_which() {
        let err = Sweep::start(Path::new("/no/such/sweep"), || {}).err().map(|err| format!("{err:#}"));
        assert!(err.is_some_and(|err| err.contains("/no/such/sweep")), "the path is named");
    }
}
