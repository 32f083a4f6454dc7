//! The engine's analyses of the open document (seed distances, step x frame maps, task scores),
//! computed when a view first asks and kept until the document changes.

use std::collections::HashMap;
use std::sync::Arc;

use stepscope_engine::analysis::{
    Diversity, SeedDistances, StepFrameMap, StepFrameStat, diversity, seed_distances, step_frame_map,
    task_instance, task_scores,
};
use stepscope_engine::tasks::{Score, TaskInstance};
use stepscope_engine::trajectory::{StepTensor, TaskInfo};

use super::document::Document;
use super::gpu::{GpuTensor, ImageKey};

/// A task instance and its ground-truth video `[3, F, H, W]` for the GPU.
type TaskAnswer = (TaskInstance, GpuTensor);

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
    Ok((instance, tensor))
}

/// A step x frame map with its values ready for the GPU (`[1, 1, steps, frames]`).
#[derive(Debug)]
pub struct StepFrameHeatmap {
    pub map: StepFrameMap,
    pub tensor: GpuTensor,
}

/// Analyses of one document state; [`StatsCache::sync`] drops them when it changes.
#[derive(Debug, Default)]
pub struct StatsCache {
    /// The document state the entries were computed from.
    generation: u64,
    distances: HashMap<(usize, StepTensor), Result<SeedDistances, String>>,
    diversity: HashMap<StepTensor, Result<Diversity, String>>,
    heatmaps: HashMap<(usize, StepFrameStat), Result<StepFrameHeatmap, String>>,
    /// The task instance the run solves, regenerated from the manifest's record of it, with
    /// its ground-truth video ready for the GPU. Kept across document changes while the record
    /// stays the same (a live run's steps do not change it).
    task: Option<(TaskInfo, Result<TaskAnswer, String>)>,
    /// Per seed, the task score of `x0_hat` at every step.
    task_scores: HashMap<usize, Result<Vec<Option<Score>>, String>>,
}

impl StatsCache {
    /// Forgets everything computed from an earlier `generation` of the document.
    pub fn sync(&mut self, generation: u64) {
        if generation != self.generation {
            self.generation = generation;
            self.distances.clear();
            self.diversity.clear();
            self.heatmaps.clear();
            self.task_scores.clear();
        }
    }

    /// The task instance of the document's run, its ground truth, and the score of `x0_hat`
    /// at every step of `seed_idx`; an error when the run solves no task or its record cannot
    /// be read.
    pub fn task_scores(
        &mut self,
        document: &Document,
        seed_idx: usize,
    ) -> Result<(&TaskInstance, &GpuTensor, &[Option<Score>]), &str> {
        let info = document.manifest().conditioning.task.as_ref().ok_or("the run solves no task")?;
        if self.task.as_ref().is_none_or(|(cached, _)| cached != info) {
            self.task_scores.clear();
            self.task = Some((info.clone(), ground_truth_of(info)));
        }
        let Some((_, task)) = &self.task else { return Err("the run solves no task") };
        let (instance, ground_truth) = task.as_ref().map_err(String::as_str)?;
        let scores = self
            .task_scores
            .entry(seed_idx)
            .or_insert_with(|| {
                task_scores(document.source(), seed_idx, instance).map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(String::as_str)?;
        Ok((instance, ground_truth, scores))
    }

    /// Every seed's distance to `reference_seed` over the steps.
    pub fn seed_distances(
        &mut self,
        document: &Document,
        reference_seed: usize,
        tensor: StepTensor,
    ) -> Result<&SeedDistances, &str> {
        self.distances
            .entry((reference_seed, tensor))
            .or_insert_with(|| {
                seed_distances(document.source(), reference_seed, tensor).map_err(|err| err.to_string())
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// How diverse `tensor` is across the seeds and steps.
    pub fn diversity(&mut self, document: &Document, tensor: StepTensor) -> Result<&Diversity, &str> {
        self.diversity
            .entry(tensor)
            .or_insert_with(|| diversity(document.source(), tensor).map_err(|err| err.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// `stat` over every step and frame of `seed_idx`.
    pub fn heatmap(
        &mut self,
        document: &Document,
        seed_idx: usize,
        stat: StepFrameStat,
    ) -> Result<&StepFrameHeatmap, &str> {
        let generation = self.generation;
        self.heatmaps
            .entry((seed_idx, stat))
            .or_insert_with(|| {
                let map = step_frame_map(document.source(), seed_idx, stat).map_err(|err| err.to_string())?;
                let values: Arc<[f32]> = map.values.clone().into();
                let key = ImageKey::of(&("step_frame", generation, seed_idx, stat));
                let tensor = GpuTensor::new(key, values, [1, 1, map.steps, map.frames])
                    .ok_or_else(|| "the map is empty".to_owned())?;
                Ok(StepFrameHeatmap { map, tensor })
            })
            .as_ref()
            .map_err(String::as_str)
    }
}
