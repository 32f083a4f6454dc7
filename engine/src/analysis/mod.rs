//! Statistics over a recorded run, computed the same way for a trajectory file and a live run:
//! how far seeds are apart at each step, and per-(step, frame) maps such as how much the
//! prediction changed since the step before or how strong a layer's tokens are; and, for a
//! built-in task, how well the prediction at each step solves it.
mod seed_distance;
mod source;
mod step_frame;
mod task_scores;

pub use seed_distance::{SeedDistances, seed_distances};
pub use source::{AnalysisError, TensorSource};
pub use step_frame::{StepFrameMap, StepFrameStat, step_frame_map};
pub use task_scores::{task_info, task_instance, task_scores};
