//! The thread `stepscope-tensors`, which reads a file's tensors for the views and measures what
//! would take the UI thread more than a frame: a Wan latent of 16 x 21 x 60 x 104 is 2.1 M
//! values (8.4 MB as f32, about 10 ms to read, convert and scan on one core), and the Layers view
//! wants eight of them at once. The UI thread sends a job, draws a placeholder, and takes the
//! result in a later frame; the thread wakes the window when a job is done.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use stepscope_engine::trajectory::{TensorName, TrajectoryReader};

use super::gpu::{GpuTensor, ImageKey};

/// Jobs waiting for the thread at most. Scrubbing faster than the reads asks for more; those
/// are asked again by a later frame if still shown, so a quick scrub never queues a backlog of
/// steps the user has passed.
const JOBS_IN_FLIGHT: usize = 16;

/// What the thread is asked to do.
pub enum TensorJob {
    /// Read `name` from `reader` as a drawable tensor named `key`.
    Read { name: TensorName, key: ImageKey, reader: Arc<TrajectoryReader> },
    /// Find the largest finite `|a - b|` (the colour range of a difference).
    LargestDifference { a: GpuTensor, b: GpuTensor },
}

/// What the thread sends back.
pub enum TensorDone {
    /// The tensor read for `name` (load `key`), or why it could not be.
    Read { name: TensorName, key: ImageKey, tensor: Result<GpuTensor, String> },
    /// The largest finite `|a - b|` of the tensors named by the keys.
    LargestDifference { keys: (ImageKey, ImageKey), largest: f32 },
}

/// The thread's two ends, held by the tensor cache.
pub struct TensorLoader {
    jobs: Sender<TensorJob>,
    done: Receiver<TensorDone>,
}

impl std::fmt::Debug for TensorLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorLoader").field("queued", &self.jobs.len()).finish_non_exhaustive()
    }
}

impl TensorLoader {
    /// Starts the thread; `wake` is called after each finished job (it repaints the window).
    /// The thread ends when the loader is dropped.
    pub fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (jobs, job_receiver) = crossbeam_channel::bounded::<TensorJob>(JOBS_IN_FLIGHT);
        // The thread waits when the UI thread has not taken in this many results yet.
        let (done_sender, done) = crossbeam_channel::bounded(JOBS_IN_FLIGHT);
        std::thread::Builder::new().name("stepscope-tensors".to_owned()).spawn(move || {
            for job in job_receiver {
                if done_sender.send(run(job)).is_err() {
                    return;
                }
                wake();
            }
        })?;
        Ok(Self { jobs, done })
    }

    /// Queues `job`; `false` if the queue is full or the thread gone (ask again in a later
    /// frame).
    #[must_use]
    pub fn queue(&self, job: TensorJob) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// The jobs finished since the last call.
    pub fn finished(&self) -> impl Iterator<Item = TensorDone> + '_ {
        self.done.try_iter()
    }
}

fn run(job: TensorJob) -> TensorDone {
    match job {
        TensorJob::Read { name, key, reader } => {
            let tensor = reader
                .load_values(&name)
                .map_err(|err| err.to_string())
                .and_then(|(values, dims)| drawable(name, values, &dims, key));
            TensorDone::Read { name, key, tensor }
        }
        TensorJob::LargestDifference { a, b } => TensorDone::LargestDifference {
            keys: (a.key(), b.key()),
            largest: largest_abs_difference(&a, &b),
        },
    }
}

/// `values` of shape `dims` as a drawable `[C, F, H, W]` tensor named `key` (an `[F, H, W]`
/// tensor gets one channel); the error says what is wrong with it.
pub fn drawable(
    name: TensorName,
    values: Vec<f32>,
    dims: &[usize],
    key: ImageKey,
) -> Result<GpuTensor, String> {
    let shape = match *dims {
        [c, f, h, w] => [c, f, h, w],
        [f, h, w] => [1, f, h, w],
        ref other => return Err(format!("{name} has shape {other:?}, not [C, F, H, W] or [F, H, W]")),
    };
    GpuTensor::new(key, values, shape).ok_or_else(|| format!("{name}: values disagree with shape {shape:?}"))
}

/// The largest finite `|a - b|` over the values of `a` and `b` (paired in order).
#[must_use]
pub fn largest_abs_difference(a: &GpuTensor, b: &GpuTensor) -> f32 {
    a.values()
        .iter()
        .zip(b.values())
        .map(|(x, y)| (x - y).abs())
        .filter(|d| d.is_finite())
        .fold(0.0f32, f32::max)
}
