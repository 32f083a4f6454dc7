//! Turning sampling sessions into a trajectory file: the manifest from the session's model,
//! schedule and captures, and each step's tensors under their contract names.
use candle_core::Tensor;
use serde_json::{Map, Value};

use crate::session::{SamplingSession, StepRecord};
use crate::trajectory::{
    CREATED_BY, Captures, Conditioning, FORMAT_VERSION, ForkPoint, Intervention, Manifest, ModelInfo,
    NoiseSource, Schedule, SeedRecord, StepTensor, StorageDtype, TaskInfo, TensorName, TrajectoryError,
    TrajectoryWriter, VideoInfo,
};

/// What the session itself does not know about a run: where the model and prompt came from.
#[derive(Debug, Clone, Default)]
pub struct RunProvenance {
    /// A path or name for the weights.
    pub model_source: String,
    /// The model's diffusers `config.json` as written in the checkpoint.
    pub model_config: Map<String, Value>,
    /// Prompt text, when known.
    pub prompt: Option<String>,
    /// Where the prompt embeddings came from (e.g. `file:embeds.safetensors`).
    pub prompt_embeddings: String,
    /// The built-in task instance, if the run solves one.
    pub task: Option<TaskInfo>,
}

/// Collects the steps of one or more seeds of a run and writes them as one trajectory file.
///
/// Cloning is cheap (tensors are shared), so a live run can hand a snapshot to a saving thread.
#[derive(Debug, Clone)]
pub struct Recorder {
    writer: TrajectoryWriter,
}

impl Recorder {
    /// A recorder for runs shaped like `session` (same model, schedule, conditioning and
    /// captures for every seed), storing tensors as `storage`.
    #[must_use]
    pub fn new(session: &SamplingSession, provenance: RunProvenance, storage: StorageDtype) -> Self {
        let settings = session.settings();
        let model = session.model();
        let schedule = session.solver().schedule();
        let capture = session.capture();
        let mut layers: Vec<usize> = capture.layers.iter().map(|(layer_idx, _)| *layer_idx).collect();
        layers.dedup();
        let mut kinds: Vec<_> = capture.layers.iter().flat_map(|(_, kinds)| kinds.iter().copied()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let query_tokens = if kinds.iter().any(|kind| kind.is_attention()) {
            capture.queries.iter().map(|&q| q as usize).collect()
        } else {
            Vec::new()
        };
        let latent_shape = session.latent_shape();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            created_by: CREATED_BY.to_owned(),
            model: ModelInfo {
                source: provenance.model_source,
                config: provenance.model_config,
                dtype: format!("{:?}", model.dtype()).to_lowercase(),
            },
            conditioning: Conditioning {
                prompt: provenance.prompt,
                prompt_embeddings: provenance.prompt_embeddings,
                guidance_scale: settings.guidance_scale,
                negative_prompt: session.uses_guidance(),
                condition_frame: session.has_condition(),
                task: provenance.task,
            },
            schedule: Schedule {
                scheduler: schedule.kind,
                steps: schedule.steps(),
                shift: schedule.shift,
                sigmas: schedule.sigmas.clone(),
                timesteps: schedule.timesteps.clone(),
            },
            latent_shape,
            patch_size: model.config().patch_size,
            step_tensors: StepTensor::ALL.to_vec(),
            seeds: Vec::new(),
            captures: Captures { layers, kinds, query_tokens },
            video: None,
        };
        Self { writer: TrajectoryWriter::new(manifest).with_storage(storage) }
    }

    /// Registers a new seed and returns its index in tensor names.
    pub fn add_seed(&mut self, noise: NoiseSource, forked_from: Option<ForkPoint>) -> usize {
        self.add_altered_seed(noise, forked_from, None)
    }

    /// [`Recorder::add_seed`] for a fork altered by `intervention`.
    pub fn add_altered_seed(
        &mut self,
        noise: NoiseSource,
        forked_from: Option<ForkPoint>,
        intervention: Option<Intervention>,
    ) -> usize {
        let seeds = &mut self.writer.manifest_mut().seeds;
        seeds.push(SeedRecord {
            noise,
            forked_from,
            intervention,
            steps: Vec::new(),
            capture_steps: Vec::new(),
            final_latents: false,
            video_steps: Vec::new(),
        });
        seeds.len() - 1
    }

    /// Stores one step of seed `seed_idx`.
    pub fn record_step(&mut self, seed_idx: usize, record: &StepRecord) {
        let step_idx = record.step_idx;
        self.writer.insert(TensorName::latents(seed_idx, step_idx), record.latents.clone());
        self.writer.insert(TensorName::velocity(seed_idx, step_idx), record.velocity.clone());
        self.writer.insert(TensorName::x0(seed_idx, step_idx), record.x0.clone());
        let mut captured = false;
        for layer in &record.layers {
            for (kind, tensor) in &layer.tensors {
                self.writer
                    .insert(TensorName::capture(seed_idx, step_idx, layer.layer_idx, *kind), tensor.clone());
                captured = true;
            }
        }
        if let Some(seed) = self.writer.manifest_mut().seeds.get_mut(seed_idx) {
            seed.steps.push(step_idx);
            if captured {
                seed.capture_steps.push(step_idx);
            }
        }
    }

    /// Stores step `step_idx`'s `x0` of seed `seed_idx` decoded to the video `[3, F_v, H_v,
    /// W_v]` in `[-1, 1]` by `decoder` (stored as f16, as the exporter stores it), after the step
    /// itself, in any order of steps (a live run decodes the step the user looks at); a step
    /// decoded again is replaced. Every video of a run has one shape; another is refused, saying
    /// both.
    pub fn record_video(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        video: Tensor,
        decoder: &str,
    ) -> Result<(), TrajectoryError> {
        let manifest = self.writer.manifest_mut();
        let expected = manifest.video.as_ref().map(|info| info.shape);
        let shape: [usize; 4] = video
            .dims()
            .try_into()
            .ok()
            .filter(|shape: &[usize; 4]| shape[0] == 3)
            .ok_or_else(|| TrajectoryError::VideoShape { expected, found: video.dims().to_vec() })?;
        match &manifest.video {
            Some(info) if info.shape != shape => {
                return Err(TrajectoryError::VideoShape { expected, found: shape.to_vec() });
            }
            Some(_) => {}
            None => manifest.video = Some(VideoInfo { shape, decoder: decoder.to_owned() }),
        }
        if let Some(seed) = manifest.seeds.get_mut(seed_idx)
            && let Err(position) = seed.video_steps.binary_search(&step_idx)
        {
            seed.video_steps.insert(position, step_idx);
        }
        self.writer.insert_as(TensorName::Video { seed_idx, step_idx }, video, StorageDtype::F16);
        Ok(())
    }

    /// Stores the final latents `[C, F, H, W]` of seed `seed_idx`.
    pub fn finish_seed(&mut self, seed_idx: usize, final_latents: Tensor) {
        self.writer.insert(TensorName::final_latents(seed_idx), final_latents);
        if let Some(seed) = self.writer.manifest_mut().seeds.get_mut(seed_idx) {
            seed.final_latents = true;
        }
    }

    /// Takes every remaining step of `session` into seed `seed_idx`, then its final latents;
    /// `on_step` is called after each step (for a progress bar).
    pub fn record_run(
        &mut self,
        seed_idx: usize,
        session: &mut SamplingSession,
        on_step: &mut dyn FnMut(),
    ) -> Result<(), crate::session::SessionError> {
        while !session.is_finished() {
            let record = session.step()?;
            self.record_step(seed_idx, &record);
            on_step();
        }
        self.finish_seed(seed_idx, session.latents()?);
        Ok(())
    }

    /// Forgets what seed `seed_idx` recorded from step `step_idx` on (a live run was rewound
    /// there): its step tensors, captures and final latents.
    pub fn forget_from(&mut self, seed_idx: usize, step_idx: usize) {
        let manifest = self.writer.manifest();
        let Some(seed) = manifest.seeds.get(seed_idx) else { return };
        let dropped: Vec<usize> = seed.steps.iter().copied().filter(|&k| k >= step_idx).collect();
        let mut names = vec![TensorName::final_latents(seed_idx)];
        for &k in &dropped {
            names.extend(StepTensor::ALL.map(|kind| TensorName::Step { seed_idx, step_idx: k, kind }));
            names.push(TensorName::Video { seed_idx, step_idx: k });
            for &layer_idx in &manifest.captures.layers {
                for &kind in &manifest.captures.kinds {
                    names.push(TensorName::capture(seed_idx, k, layer_idx, kind));
                }
            }
        }
        for name in &names {
            self.writer.remove(name);
        }
        if let Some(seed) = self.writer.manifest_mut().seeds.get_mut(seed_idx) {
            seed.steps.retain(|&k| k < step_idx);
            seed.capture_steps.retain(|&k| k < step_idx);
            seed.video_steps.retain(|&k| k < step_idx);
            seed.final_latents = false;
        }
    }

    /// The tensor recorded as `name`, if any.
    #[must_use]
    pub fn tensor(&self, name: &TensorName) -> Option<&Tensor> {
        self.writer.get(name)
    }

    /// The manifest so far.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        self.writer.manifest()
    }

    /// Writes the file atomically (see [`TrajectoryWriter::write`]).
    pub fn write(&self, path: &std::path::Path) -> Result<(), TrajectoryError> {
        self.writer.write(path)
    }
}
