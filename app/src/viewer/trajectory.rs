//! An open trajectory file as the viewer uses it: the reader plus what the views pick from it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use stepscope_engine::trajectory::{Manifest, TensorName, TrajectoryReader};

use super::latent_rgb::LatentVideo;
use super::settings::StepView;

/// A trajectory file opened for viewing. Tensors are read from the memory map on demand.
#[derive(Debug)]
pub struct OpenTrajectory {
    reader: TrajectoryReader,
    /// The seed the views show, an index into the manifest's seeds.
    pub seed_idx: usize,
}

impl OpenTrajectory {
    /// Opens and checks the file at `path` (its header only; no tensor is read yet).
    pub fn open(path: &Path) -> Result<Self> {
        let reader = TrajectoryReader::open(path)
            .with_context(|| format!("could not open {} as a trajectory", path.display()))?;
        Ok(Self { reader, seed_idx: 0 })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        self.reader.manifest()
    }

    /// The file's plain-words description (what `stepscope info` prints).
    #[must_use]
    pub fn describe(&self) -> String {
        self.reader.describe()
    }

    #[must_use]
    pub fn num_steps(&self) -> usize {
        self.manifest().schedule.steps
    }

    /// Whether the file stores `view`'s tensor at its recorded steps.
    #[must_use]
    pub fn has_view(&self, view: StepView) -> bool {
        self.manifest().step_tensors.contains(&view.step_tensor())
    }

    /// `view`'s tensor at step `step_idx` of the selected seed, `[C, F, H, W]`, read from the file.
    pub fn load_video(&self, step_idx: usize, view: StepView) -> Result<LatentVideo> {
        let seed_idx = self.seed_idx;
        let recorded = self.manifest().seeds.get(seed_idx).is_some_and(|seed| seed.steps.contains(&step_idx));
        if !recorded {
            bail!("seed {seed_idx} has nothing stored at step {step_idx}");
        }
        let name = TensorName::Step { seed_idx, step_idx, kind: view.step_tensor() };
        let tensor = self.reader.load(&name).with_context(|| format!("reading {name}"))?;
        let shape: [usize; 4] = tensor
            .dims()
            .try_into()
            .with_context(|| format!("{name} has shape {:?}, not [C, F, H, W]", tensor.dims()))?;
        let values = tensor
            .flatten_all()
            .and_then(|flat| flat.to_vec1::<f32>())
            .with_context(|| format!("reading {name}"))?;
        LatentVideo::new(shape, values)
            .with_context(|| format!("{name}: values disagree with shape {shape:?}"))
    }
}

/// A file the viewer failed to open, with the reason.
#[derive(Debug)]
pub struct OpenFailure {
    pub path: PathBuf,
    /// The whole error chain, outermost first.
    pub message: String,
}
