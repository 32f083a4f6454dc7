//! What the views show: a trajectory file, or a live run as it arrives from the engine thread.
//! Both read the same way, as a manifest plus tensors by their contract names, so every view
//! works on either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use candle_core::Tensor;
use stepscope_engine::analysis::TensorSource;
use stepscope_engine::trajectory::{Manifest, TensorName, TrajectoryReader};
use stepscope_engine::worker::LiveRecord;

use super::gpu::FrameReader;
use super::stats_worker::SharedSource;
use super::step_view::StepView;

/// Where a document's tensors come from.
#[derive(Debug)]
enum Source {
    /// A file, read lazily from its memory map (shared with the analysis thread).
    File(Arc<TrajectoryReader>),
    /// A live run: the steps the engine has sent so far.
    Live(Box<LiveRecord>),
}

/// A trajectory the window shows, with the seed the views follow.
#[derive(Debug)]
pub struct Document {
    source: Source,
    /// The seed the views show, an index into the manifest's seeds.
    pub seed_idx: usize,
}

impl Document {
    /// Opens and checks the file at `path` (its header only; no tensor is read yet).
    pub fn open(path: &Path) -> Result<Self> {
        let reader = TrajectoryReader::open(path)?;
        Ok(Self { source: Source::File(Arc::new(reader)), seed_idx: 0 })
    }

    /// A live run, empty until the engine's steps arrive.
    #[must_use]
    pub fn live(record: LiveRecord) -> Self {
        Self { source: Source::Live(Box::new(record)), seed_idx: 0 }
    }

    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        match &self.source {
            Source::File(reader) => reader.manifest(),
            Source::Live(record) => record.manifest(),
        }
    }

    /// The file, for a document read from one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::File(reader) => Some(reader.path()),
            Source::Live(_) => None,
        }
    }

    /// The file name, or "Live run".
    #[must_use]
    pub fn title(&self) -> String {
        self.path().map_or_else(
            || "Live run".to_owned(),
            |path| {
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
            },
        )
    }

    /// The plain-words description (what `stepscope info` prints for a file).
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File(reader) => reader.describe(),
            Source::Live(record) => format!("Live run (not saved)\n{}", record.manifest()),
        }
    }

    /// The document as the engine's analyses read it.
    #[must_use]
    pub fn source(&self) -> &dyn TensorSource {
        match &self.source {
            Source::File(reader) => reader.as_ref(),
            Source::Live(record) => record.as_ref(),
        }
    }

    /// The document's data for another thread (the analyses' job thread): the file's reader,
    /// shared, or a snapshot of the live record as it is now (its tensors are shared, not
    /// copied).
    #[must_use]
    pub fn shared_source(&self) -> SharedSource {
        match &self.source {
            Source::File(reader) => Arc::clone(reader) as SharedSource,
            Source::Live(record) => Arc::new(record.as_ref().clone()),
        }
    }

    /// The file's reader (shared with the threads that read it), for a document read from one.
    #[must_use]
    pub fn file_reader(&self) -> Option<&Arc<TrajectoryReader>> {
        match &self.source {
            Source::File(reader) => Some(reader),
            Source::Live(_) => None,
        }
    }

    /// For a file's tensor `name` of more than `min_values` values, its `[C, F, H, W]` shape
    /// (`[F, H, W]` read as one channel) and a reader of one frame at a time from the file;
    /// `None` for a smaller tensor, a live run, or a tensor of another rank.
    #[must_use]
    pub fn frame_reader(&self, name: &TensorName, min_values: usize) -> Option<([usize; 4], FrameReader)> {
        let Source::File(reader) = &self.source else { return None };
        let shape = match *reader.shape_of(name)? {
            [c, f, h, w] => [c, f, h, w],
            [f, h, w] => [1, f, h, w],
            _ => return None,
        };
        if shape.iter().product::<usize>() <= min_values {
            return None;
        }
        let (reader, name) = (Arc::clone(reader), *name);
        let read: FrameReader = Arc::new(move |frame_idx| {
            reader.load_frame(&name, frame_idx).map(|(values, _)| values).map_err(|err| err.to_string())
        });
        Some((shape, read))
    }

    /// The live run's record, if this is one.
    #[must_use]
    pub fn live_record(&self) -> Option<&LiveRecord> {
        match &self.source {
            Source::File(_) => None,
            Source::Live(record) => Some(record),
        }
    }

    pub fn live_record_mut(&mut self) -> Option<&mut LiveRecord> {
        match &mut self.source {
            Source::File(_) => None,
            Source::Live(record) => Some(record),
        }
    }

    #[must_use]
    pub fn num_steps(&self) -> usize {
        self.manifest().schedule.steps
    }

    #[must_use]
    pub fn num_seeds(&self) -> usize {
        self.manifest().seeds.len()
    }

    /// Whether the document stores `view`'s tensor (at its recorded steps; a decoded video at
    /// some of them).
    #[must_use]
    pub fn has_view(&self, view: StepView) -> bool {
        match view.step_tensor() {
            Some(kind) => self.manifest().step_tensors.contains(&kind),
            None => self.manifest().video.is_some(),
        }
    }

    /// Why `view` cannot be shown for `seed_idx` at `step_idx`, in a sentence: a decoded video
    /// lists the steps that have one; a live run may not have reached the step yet.
    #[must_use]
    pub fn why_missing(&self, seed_idx: usize, step_idx: usize, view: StepView) -> String {
        if view == StepView::Video {
            let steps: Vec<String> = (0..self.num_steps())
                .filter(|&step| self.manifest().video_owner(seed_idx, step).is_some())
                .map(|step| step.to_string())
                .collect();
            if steps.is_empty() {
                return format!("seed {seed_idx} has no decoded video at any step");
            }
            return format!(
                "seed {seed_idx} has no decoded video at step {step_idx}; it has one at step {}",
                steps.join(", ")
            );
        }
        if self.live_record().is_some() {
            format!(
                "seed {seed_idx} has not reached step {step_idx} yet: press S to take one step, \
                 R to run to the end"
            )
        } else {
            format!("seed {seed_idx} has nothing stored at step {step_idx}")
        }
    }

    /// The seed whose tensors hold `view` for `seed_idx` at `step_idx`, if any does.
    #[must_use]
    pub fn view_owner(&self, seed_idx: usize, step_idx: usize, view: StepView) -> Option<usize> {
        view_owner(self.manifest(), seed_idx, step_idx, view)
    }

    /// The seed whose tensors hold `seed_idx`'s state at `step_idx` (see
    /// [`Manifest::step_owner`]).
    #[must_use]
    pub fn owner_of(&self, seed_idx: usize, step_idx: usize) -> Option<usize> {
        self.manifest().step_owner(seed_idx, step_idx)
    }

    /// Whether step `step_idx` of `seed_idx` can be shown.
    #[must_use]
    pub fn has_step(&self, seed_idx: usize, step_idx: usize) -> bool {
        self.owner_of(seed_idx, step_idx).is_some()
    }

    /// The tensor `name`, read from the file or taken from the live record.
    /// The values of tensor `name` as `f32`, row-major, with its shape (from a file, without
    /// building a tensor around them).
    pub fn tensor_values(&self, name: &TensorName) -> Result<(Vec<f32>, Vec<usize>)> {
        match &self.source {
            Source::File(reader) => Ok(reader.load_values(name)?),
            Source::Live(_) => {
                let tensor = self.tensor(name)?;
                let shape = tensor.dims().to_vec();
                Ok((tensor.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?, shape))
            }
        }
    }

    pub fn tensor(&self, name: &TensorName) -> Result<Tensor> {
        match &self.source {
            Source::File(reader) => reader.load(name).with_context(|| format!("reading {name}")),
            Source::Live(record) => {
                record.tensor(name).cloned().ok_or_else(|| anyhow!("{name} has not arrived from the engine"))
            }
        }
    }
}

/// The seed whose tensors in a run described by `manifest` hold `view` for `seed_idx` at
/// `step_idx`, if any does (see [`Manifest::video_owner`] and [`Manifest::step_owner`]).
#[must_use]
pub fn view_owner(manifest: &Manifest, seed_idx: usize, step_idx: usize, view: StepView) -> Option<usize> {
    match view {
        StepView::Video => manifest.video_owner(seed_idx, step_idx),
        _ => manifest.step_owner(seed_idx, step_idx),
    }
}

/// A file the viewer failed to open, with the reason.
#[derive(Debug)]
pub struct OpenFailure {
    pub path: PathBuf,
    /// The whole error chain, outermost first.
    pub message: String,
}
