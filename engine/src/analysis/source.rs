//! Where analyses read tensors from.
use candle_core::Tensor;

use crate::trajectory::{Manifest, TensorName, TrajectoryError, TrajectoryReader};
use crate::worker::LiveRecord;

/// Why an analysis could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Trajectory(#[from] TrajectoryError),
    #[error("{0} is not in the run (not recorded, or not computed yet)")]
    Missing(TensorName),
    #[error("{name} has shape {shape:?}, expected {expected}")]
    Shape { name: TensorName, shape: Vec<usize>, expected: &'static str },
    #[error("the task: {0}")]
    Task(String),
    #[error("computing on {name}: {cause}")]
    Tensor { name: TensorName, cause: candle_core::Error },
}

/// A run's manifest and its tensors by contract name: a trajectory file or a live record.
pub trait TensorSource {
    fn manifest(&self) -> &Manifest;

    /// The tensor `name`, as f32.
    fn load_tensor(&self, name: &TensorName) -> Result<Tensor, AnalysisError>;
}

impl TensorSource for TrajectoryReader {
    fn manifest(&self) -> &Manifest {
        TrajectoryReader::manifest(self)
    }

    fn load_tensor(&self, name: &TensorName) -> Result<Tensor, AnalysisError> {
        Ok(self.load(name)?)
    }
}

impl TensorSource for LiveRecord {
    fn manifest(&self) -> &Manifest {
        LiveRecord::manifest(self)
    }

    fn load_tensor(&self, name: &TensorName) -> Result<Tensor, AnalysisError> {
        let tensor = self.tensor(name).ok_or_else(|| AnalysisError::Missing(*name))?;
        tensor
            .to_dtype(candle_core::DType::F32)
            .map_err(|source| AnalysisError::Tensor { name: *name, cause: source })
    }
}

/// A tensor's values as f32 with its dims checked to have `rank` entries.
pub(crate) fn values_of(
    source: &dyn TensorSource,
    name: &TensorName,
    rank: usize,
    expected: &'static str,
) -> Result<(Vec<usize>, Vec<f32>), AnalysisError> {
    let tensor = source.load_tensor(name)?;
    let dims = tensor.dims().to_vec();
    if dims.len() != rank {
        return Err(AnalysisError::Shape { name: *name, shape: dims, expected });
    }
    let values = tensor
        .flatten_all()
        .and_then(|flat| flat.to_vec1::<f32>())
        .map_err(|source| AnalysisError::Tensor { name: *name, cause: source })?;
    Ok((dims, values))
}
