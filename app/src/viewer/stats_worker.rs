//! The job thread `stepscope-stats`, which computes the engine's whole-run analyses (seed
//! distances, diversity, step x frame maps, task scores) away from the UI thread: the window
//! sends a job with a shared handle to the run's data and draws what it had meanwhile; the
//! thread wakes the window when a result is ready. Jobs of a document state that has since
//! changed are skipped unread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use stepscope_engine::analysis::{
    Diversity, SeedDistances, StepFrameMap, StepFrameStat, TensorSource, diversity, seed_distances,
    step_frame_map, task_scores,
};
use stepscope_engine::tasks::{Score, TaskInstance};
use stepscope_engine::trajectory::StepTensor;

/// A run's data as the job thread reads it (a file's reader, or a snapshot of a live record).
pub type SharedSource = Arc<dyn TensorSource + Send + Sync>;

/// Jobs waiting at most; beyond that the window asks again in a later frame.
const JOBS_IN_FLIGHT: usize = 64;

/// Which analysis of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatsKey {
    /// Every seed's distance to `reference` over the steps.
    Distances { reference: usize, tensor: StepTensor },
    /// How diverse `tensor` is across seeds and steps.
    Diversity(StepTensor),
    /// `stat` over every step and frame of a seed.
    Heatmap { seed_idx: usize, stat: StepFrameStat },
    /// The task score of a seed's `x0_hat` at every step.
    TaskScores { seed_idx: usize },
}

/// An analysis' result.
#[derive(Debug, Clone)]
pub enum StatsValue {
    Distances(SeedDistances),
    Diversity(Diversity),
    Heatmap(StepFrameMap),
    TaskScores(Vec<Option<Score>>),
}

/// One analysis to compute for the document state `generation`.
pub struct StatsJob {
    pub generation: u64,
    pub key: StatsKey,
    pub source: SharedSource,
    /// The task instance, for [`StatsKey::TaskScores`].
    pub task: Option<Arc<TaskInstance>>,
}

/// What the thread sends back.
#[derive(Debug)]
pub struct StatsDone {
    pub generation: u64,
    pub key: StatsKey,
    pub value: Result<StatsValue, String>,
}

/// Computes `key` from `source`.
fn compute(
    key: StatsKey,
    source: &dyn TensorSource,
    task: Option<&TaskInstance>,
) -> Result<StatsValue, String> {
    let value = match key {
        StatsKey::Distances { reference, tensor } => {
            StatsValue::Distances(seed_distances(source, reference, tensor).map_err(|err| err.to_string())?)
        }
        StatsKey::Diversity(tensor) => {
            StatsValue::Diversity(diversity(source, tensor).map_err(|err| err.to_string())?)
        }
        StatsKey::Heatmap { seed_idx, stat } => {
            StatsValue::Heatmap(step_frame_map(source, seed_idx, stat).map_err(|err| err.to_string())?)
        }
        StatsKey::TaskScores { seed_idx } => {
            let task = task.ok_or("no task instance was given for the task scores")?;
            StatsValue::TaskScores(task_scores(source, seed_idx, task).map_err(|err| err.to_string())?)
        }
    };
    Ok(value)
}

/// The job thread, and the channels to it.
#[derive(Debug)]
pub struct StatsWorker {
    jobs: Option<Sender<StatsJob>>,
    done: Receiver<StatsDone>,
    /// The newest document state the window shows: older jobs are skipped.
    latest: Arc<AtomicU64>,
}

impl std::fmt::Debug for StatsJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsJob")
            .field("generation", &self.generation)
            .field("key", &self.key)
            .field("task", &self.task.as_ref().map(|task| task.seed))
            .finish_non_exhaustive()
    }
}

impl StatsWorker {
    /// Starts the thread; `wake` is called after each result (to repaint the window).
    pub fn spawn(wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (jobs, job_receiver) = crossbeam_channel::bounded::<StatsJob>(JOBS_IN_FLIGHT);
        let (done_sender, done) = crossbeam_channel::bounded(JOBS_IN_FLIGHT);
        let latest = Arc::new(AtomicU64::new(0));
        let newest = Arc::clone(&latest);
        std::thread::Builder::new().name("stepscope-stats".to_owned()).spawn(move || {
            for job in job_receiver {
                if job.generation < newest.load(Ordering::Relaxed) {
                    continue;
                }
                let value = compute(job.key, job.source.as_ref(), job.task.as_deref());
                if done_sender.send(StatsDone { generation: job.generation, key: job.key, value }).is_err() {
                    return;
                }
                wake();
            }
        })?;
        Ok(Self { jobs: Some(jobs), done, latest })
    }

    /// Says which document state is current: jobs of older ones are skipped.
    pub fn set_generation(&self, generation: u64) {
        self.latest.store(generation, Ordering::Relaxed);
    }

    /// Queues `job`; `false` if the queue is full (ask again later) or the thread has stopped.
    pub fn submit(&self, job: StatsJob) -> bool {
        match self.jobs.as_ref().map(|jobs| jobs.try_send(job)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// The results ready so far.
    pub fn finished(&self) -> Vec<StatsDone> {
        self.done.try_iter().collect()
    }

    /// Waits up to `timeout` for the next result (tests, benchmarks).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<StatsDone> {
        self.done.recv_timeout(timeout).ok()
    }
}

impl Drop for StatsWorker {
    /// Closing the job channel ends the thread after the job in hand (not joined: a long
    /// analysis must not hold up closing the window); the queued ones are skipped.
    fn drop(&mut self) {
        self.jobs = None;
        self.latest.store(u64::MAX, Ordering::Relaxed);
    }
}
