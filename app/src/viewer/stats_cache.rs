//! The engine's analyses of the shown run (seed distances, diversity, step x frame maps, task
//! scores), computed on the job thread ([`super::stats_worker`]) when a view first asks, and
//! kept per document state (`generation`). While a newer state is computed the views keep
//! drawing the last result, so a live run's plots update without flashing "computing"; the
//! UI thread never waits for an analysis.

use std::collections::HashMap;
use std::sync::Arc;

use stepscope_engine::analysis::{Diversity, SeedDistances, StepFrameMap, StepFrameStat, task_instance};
use stepscope_engine::tasks::{Score, TaskInstance};
use stepscope_engine::trajectory::{StepTensor, TaskInfo};

use super::document::Document;
use super::gpu::{GpuTensor, ImageKey};
use super::stats_worker::{StatsDone, StatsJob, StatsKey, StatsValue, StatsWorker};

/// A task instance and its ground-truth video `[3, F, H, W]` for the GPU.
type TaskAnswer = (Arc<TaskInstance>, GpuTensor);

/// The instance `info` names and its ground truth as a GPU tensor.
fn ground_truth_of(info: &TaskInfo) -> Result<TaskAnswer, String> {
    let instance = task_instance(info).map_err(|err| err.to_string())?;
    let key = ImageKey::of(&(
        "task_ground_truth",
        &info.name,
        info.seed,
        instance.params.size,
        instance.params.frames,
    ));
    let video = &instance.ground_truth;
    let tensor =
        GpuTensor::new(key, video.values().to_vec(), video.shape()).ok_or("the task's video is empty")?;
    Ok((Arc::new(instance), tensor))
}

/// A step x frame map with its values ready for the GPU (`[1, 1, steps, frames]`).
#[derive(Debug)]
pub struct StepFrameHeatmap {
    pub map: StepFrameMap,
    pub tensor: GpuTensor,
}

/// An analysis as the views read it.
#[derive(Debug)]
enum Cached {
    Distances(SeedDistances),
    Diversity(Diversity),
    Heatmap(StepFrameHeatmap),
    TaskScores(Vec<Option<Score>>),
}

/// Where an analysis stands.
#[derive(Debug, Clone, Copy)]
pub enum Stat<'a, T: ?Sized> {
    Ready(&'a T),
    /// Being computed, with nothing older to show.
    Computing,
    Failed(&'a str),
}

impl<'a, T: ?Sized> Stat<'a, T> {
    fn map<U: ?Sized>(self, f: impl FnOnce(&'a T) -> Option<&'a U>) -> Stat<'a, U> {
        match self {
            Self::Ready(value) => {
                f(value).map_or(Stat::Failed("the analysis came back of another kind"), Stat::Ready)
            }
            Self::Computing => Stat::Computing,
            Self::Failed(message) => Stat::Failed(message),
        }
    }

    /// The value; else "computing…" (the job thread repaints the window when it is done) or
    /// the failure in the warning colour, in `ui`.
    pub fn or_show(self, ui: &mut egui::Ui) -> Option<&'a T> {
        match self {
            Self::Ready(value) => Some(value),
            Self::Computing => {
                ui.weak("computing…");
                None
            }
            Self::Failed(message) => {
                ui.colored_label(ui.visuals().warn_fg_color, message);
                None
            }
        }
    }

    /// The value, if ready.
    pub fn ready(self) -> Option<&'a T> {
        match self {
            Self::Ready(value) => Some(value),
            Self::Computing | Self::Failed(_) => None,
        }
    }
}

/// One analysis: its newest result and whether a newer state is being computed.
#[derive(Debug)]
struct Entry {
    result: Option<(u64, Result<Cached, String>)>,
    /// The document state a job was sent for, until its result arrives.
    pending: Option<u64>,
}

/// The analyses of the shown run.
#[derive(Debug, Default)]
pub struct StatsCache {
    /// The current document state.
    generation: u64,
    entries: HashMap<StatsKey, Entry>,
    /// The task instance the run solves, regenerated from the manifest's record of it, with
    /// its ground-truth video ready for the GPU. Kept while the record stays the same.
    task: Option<(TaskInfo, Result<TaskAnswer, String>)>,
    /// Started on the first analysis asked for.
    worker: Option<StatsWorker>,
    /// Repaints the window when a result is ready.
    egui_ctx: Option<egui::Context>,
}

impl StatsCache {
    /// Takes in the job thread's results and notes the current document state; results of
    /// older states are kept for drawing until the current one's arrive.
    pub fn sync(&mut self, generation: u64, ctx: &egui::Context) {
        if self.egui_ctx.is_none() {
            self.egui_ctx = Some(ctx.clone());
        }
        self.generation = generation;
        let Some(worker) = &self.worker else { return };
        worker.set_generation(generation);
        for done in worker.finished() {
            self.take(done);
        }
    }

    /// Forgets every analysis (another document is shown).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Whether an analysis is being computed (tests wait for none).
    #[must_use]
    pub fn is_computing(&self) -> bool {
        self.entries.values().any(|entry| entry.pending.is_some())
    }

    /// Waits up to `timeout` for the analyses being computed (tests, benchmarks).
    pub fn wait(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.is_computing() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(done) = self.worker.as_ref().and_then(|worker| worker.wait(left)) else { return };
            self.take(done);
        }
    }

    fn take(&mut self, StatsDone { generation, key, value }: StatsDone) {
        let Some(entry) = self.entries.get_mut(&key) else { return };
        if entry.pending == Some(generation) {
            entry.pending = None;
        }
        if entry.result.as_ref().is_some_and(|(newest, _)| *newest > generation) {
            return;
        }
        let cached = value.and_then(|value| match value {
            StatsValue::Distances(distances) => Ok(Cached::Distances(distances)),
            StatsValue::Diversity(diversity) => Ok(Cached::Diversity(diversity)),
            StatsValue::TaskScores(scores) => Ok(Cached::TaskScores(scores)),
            StatsValue::Heatmap(map) => {
                let values: Arc<[f32]> = map.values.clone().into();
                let image_key = ImageKey::of(&("step_frame", generation, key));
                let tensor = GpuTensor::new(image_key, values, [1, 1, map.steps, map.frames])
                    .ok_or_else(|| "the step x frame map is empty".to_owned())?;
                Ok(Cached::Heatmap(StepFrameHeatmap { map, tensor }))
            }
        });
        entry.result = Some((generation, cached));
    }

    /// The analysis `key` of `document`: asked of the job thread unless the current state's is
    /// ready or on its way; the newest result meanwhile.
    fn get(
        &mut self,
        document: &Document,
        key: StatsKey,
        task: Option<Arc<TaskInstance>>,
    ) -> Stat<'_, Cached> {
        let generation = self.generation;
        let entry = self.entries.entry(key).or_insert(Entry { result: None, pending: None });
        let current = entry.result.as_ref().is_some_and(|(computed, _)| *computed == generation);
        if !current && entry.pending != Some(generation) {
            if self.worker.is_none() {
                let ctx = self.egui_ctx.clone();
                self.worker = StatsWorker::spawn(move || {
                    if let Some(ctx) = &ctx {
                        ctx.request_repaint();
                    }
                })
                .ok();
            }
            let Some(worker) = &self.worker else {
                return Stat::Failed("the analysis thread could not start");
            };
            worker.set_generation(generation);
            let job = StatsJob { generation, key, source: document.shared_source(), task };
            if worker.submit(job) {
                entry.pending = Some(generation);
            } else if let Some(ctx) = &self.egui_ctx {
                // The queue is full: ask again in a moment.
                ctx.request_repaint_after(std::time::Duration::from_millis(50));
            }
        }
        match &entry.result {
            Some((_, Ok(cached))) => Stat::Ready(cached),
            Some((_, Err(message))) => Stat::Failed(message),
            None => Stat::Computing,
        }
    }

    /// The task instance of the document's run and its ground truth; an error when the run
    /// solves no task or its record cannot be read.
    pub fn task(&mut self, document: &Document) -> Result<(&TaskInstance, &GpuTensor), &str> {
        let (instance, ground_truth) = self.task_answer(document)?;
        Ok((instance, ground_truth))
    }

    fn task_answer(&mut self, document: &Document) -> Result<&TaskAnswer, &str> {
        let info = document.manifest().conditioning.task.as_ref().ok_or("the run solves no task")?;
        if self.task.as_ref().is_none_or(|(cached, _)| cached != info) {
            self.entries.retain(|key, _| !matches!(key, StatsKey::TaskScores { .. }));
            self.task = Some((info.clone(), ground_truth_of(info)));
        }
        let Some((_, task)) = &self.task else { return Err("the run solves no task") };
        task.as_ref().map_err(String::as_str)
    }

    /// The score of `x0_hat` at every step of `seed_idx`, for a run that solves a task.
    pub fn task_scores(&mut self, document: &Document, seed_idx: usize) -> Stat<'_, [Option<Score>]> {
        let Ok(instance) = self.task_answer(document).map(|(instance, _)| Arc::clone(instance)) else {
            return match self.task_answer(document) {
                Err(message) => Stat::Failed(message),
                Ok(_) => Stat::Computing,
            };
        };
        self.get(document, StatsKey::TaskScores { seed_idx }, Some(instance)).map(|cached| match cached {
            Cached::TaskScores(scores) => Some(scores.as_slice()),
            _ => None,
        })
    }

    /// Every seed's distance to `reference` over the steps.
    pub fn seed_distances(
        &mut self,
        document: &Document,
        reference: usize,
        tensor: StepTensor,
    ) -> Stat<'_, SeedDistances> {
        self.get(document, StatsKey::Distances { reference, tensor }, None).map(|cached| match cached {
            Cached::Distances(distances) => Some(distances),
            _ => None,
        })
    }

    /// How diverse `tensor` is across the seeds and steps.
    pub fn diversity(&mut self, document: &Document, tensor: StepTensor) -> Stat<'_, Diversity> {
        self.get(document, StatsKey::Diversity(tensor), None).map(|cached| match cached {
            Cached::Diversity(diversity) => Some(diversity),
            _ => None,
        })
    }

    /// `stat` over every step and frame of `seed_idx`.
    pub fn heatmap(
        &mut self,
        document: &Document,
        seed_idx: usize,
        stat: StepFrameStat,
    ) -> Stat<'_, StepFrameHeatmap> {
        self.get(document, StatsKey::Heatmap { seed_idx, stat }, None).map(|cached| match cached {
            Cached::Heatmap(heatmap) => Some(heatmap),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn analyses_come_from_the_job_thread_and_the_last_result_shows_while_a_newer_one_computes() {
        let document = Document::open(&crate::sample_trajectory_path()).expect("the sample opens");
        let ctx = egui::Context::default();
        let mut stats = StatsCache::default();
        stats.sync(1, &ctx);
        assert!(matches!(stats.diversity(&document, StepTensor::X0), Stat::Computing));
        assert!(stats.is_computing());
        stats.wait(WAIT);
        let first = stats.diversity(&document, StepTensor::X0).ready().cloned().expect("computed");
        // The engine's own function gives the same numbers.
        let direct =
            stepscope_engine::analysis::diversity(document.source(), StepTensor::X0).expect("diversity");
        assert_eq!(first, direct);
        // A newer document state: the older result shows until the new one arrives.
        stats.sync(2, &ctx);
        assert!(stats.diversity(&document, StepTensor::X0).ready().is_some(), "the last result stays drawn");
        assert!(stats.is_computing(), "and the new state's is on its way");
        stats.wait(WAIT);
        assert!(!stats.is_computing());
        // Another document: nothing of the old one is shown.
        stats.clear();
        assert!(matches!(stats.diversity(&document, StepTensor::X0), Stat::Computing));
        stats.wait(WAIT);
        // A failure is said, not hidden: the sample solves no task.
        assert!(matches!(stats.task_scores(&document, 0), Stat::Failed("the run solves no task")));
    }

    #[test]
    fn jobs_of_an_older_document_state_are_skipped() {
        let document = Document::open(&crate::sample_trajectory_path()).expect("the sample opens");
        let worker = StatsWorker::spawn(|| {}).expect("the thread starts");
        worker.set_generation(5);
        let job = |generation| StatsJob {
            generation,
            key: StatsKey::Diversity(StepTensor::X0),
            source: document.shared_source(),
            task: None,
        };
        assert!(worker.submit(job(4)));
        assert!(worker.submit(job(5)));
        let done = worker.wait(WAIT).expect("a result");
        assert_eq!(done.generation, 5, "the older job was skipped");
        assert!(done.value.is_ok());
        assert!(worker.wait(Duration::from_millis(50)).is_none());
    }
}
