//! Statistics over a recorded run, computed the same way for a trajectory file and a live run:
//! how far seeds are apart at each step, how diverse the predictions are across seeds and steps, and per-(step, frame) maps such as how much the
//! prediction changed since the step before or how strong a layer's tokens are; and, for a
//! built-in task, how well the prediction at each step solves it and where in the network the
//! answer can be read out (linear probes per step and layer).
mod diversity;
mod ensemble;
mod probe;
mod probe_file;
mod seed_distance;
mod source;
mod step_frame;
mod task_scores;

pub use diversity::{Diversity, diversity};
pub use ensemble::{
    EnsembleMethod, EnsembleOutcome, EnsemblePlan, EnsembleResult, mcnemar_exact, run_ensemble,
    wilson_interval,
};
pub use probe::{ProbePlan, ProbeResult, fit_probes};
pub use probe_file::{
    PROBE_KEY, PROBE_VERSION, ProbeFileError, ProbeRecord, is_probe_file, read_probe_file, write_probe_file,
};
pub use seed_distance::{SeedDistances, seed_distances};
pub use source::{AnalysisError, TensorSource};
pub use step_frame::{StepFrameMap, StepFrameStat, step_frame_map};
pub use task_scores::{commit_step, task_info, task_instance, task_scores};
