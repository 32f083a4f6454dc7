//! A live run's record, kept by the UI from the engine's events: the manifest and tensors a
//! trajectory file of the run would hold, so that what the window shows is what File > Save
//! writes.
use candle_core::Tensor;

use super::messages::{EngineEvent, RunRequest};
use crate::recording::Recorder;
use crate::session::SessionError;
use crate::trajectory::{ForkPoint, Manifest, NoiseSource, StorageDtype, TensorName};

/// What an event changed in the record, for the caller's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordChange {
    /// A seed was added (seed 0 at the start, or a fork).
    SeedAdded { seed_idx: usize },
    /// Step `step_idx` of `seed_idx` was stored.
    Step { seed_idx: usize, step_idx: usize },
    /// `seed_idx` took its last step.
    Finished { seed_idx: usize },
    /// Everything `seed_idx` held from `step_idx` on was dropped.
    Rewound { seed_idx: usize, step_idx: usize },
    /// Step `step_idx` of `seed_idx` was decoded to pixels.
    Video { seed_idx: usize, step_idx: usize },
}

/// The record of one live run: seed 0 and its forks, each step as it arrives.
#[derive(Debug, Clone)]
pub struct LiveRecord {
    recorder: Recorder,
}

impl LiveRecord {
    /// An empty record for the run `request` starts (seed 0 registered, no step yet).
    pub fn new(request: &RunRequest, storage: StorageDtype) -> Result<Self, SessionError> {
        Ok(Self { recorder: request.recorder(storage)? })
    }

    /// Takes in one event from the engine thread. Events that do not change the record
    /// (pauses, errors, seed 0's start) return `None`.
    pub fn apply(&mut self, event: &EngineEvent) -> Option<RecordChange> {
        match event {
            EngineEvent::SeedStarted {
                seed_idx,
                forked_from: Some((parent_idx, step_idx)),
                rng_seed,
                intervention,
                ..
            } => {
                let noise = rng_seed.map_or(NoiseSource::Given, NoiseSource::RngSeed);
                let fork = ForkPoint { seed_index: *parent_idx, step: *step_idx };
                let added = self.recorder.add_altered_seed(noise, Some(fork), intervention.clone());
                debug_assert_eq!(added, *seed_idx, "the UI sees every seed the engine adds, in order");
                Some(RecordChange::SeedAdded { seed_idx: added })
            }
            EngineEvent::StepCaptured { seed_idx, record } => {
                self.recorder.record_step(*seed_idx, record);
                Some(RecordChange::Step { seed_idx: *seed_idx, step_idx: record.step_idx })
            }
            EngineEvent::Finished { seed_idx, final_latents } => {
                self.recorder.finish_seed(*seed_idx, final_latents.clone());
                Some(RecordChange::Finished { seed_idx: *seed_idx })
            }
            EngineEvent::Rewound { seed_idx, step_idx } => {
                self.recorder.forget_from(*seed_idx, *step_idx);
                Some(RecordChange::Rewound { seed_idx: *seed_idx, step_idx: *step_idx })
            }
            EngineEvent::SeedStarted { forked_from: None, .. }
            | EngineEvent::Paused { .. }
            | EngineEvent::Attention { .. }
            | EngineEvent::Error { .. }
            | EngineEvent::State(_) => None,
        }
    }

    /// Stores step `step_idx`'s `x0` of seed `seed_idx` decoded to pixels (`[3, F_v, H_v, W_v]`
    /// by `decoder`), decoded on demand while the run goes on; `None` if the seed has not (or no
    /// longer has) that step, which a rewind during the decode can cause.
    pub fn insert_video(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        video: Tensor,
        decoder: &str,
    ) -> Result<Option<RecordChange>, crate::trajectory::TrajectoryError> {
        let recorded = self.manifest().seeds.get(seed_idx).is_some_and(|seed| seed.steps.contains(&step_idx));
        if !recorded {
            return Ok(None);
        }
        self.recorder.record_video(seed_idx, step_idx, video, decoder)?;
        Ok(Some(RecordChange::Video { seed_idx, step_idx }))
    }

    /// The manifest of the run so far.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        self.recorder.manifest()
    }

    /// The tensor recorded as `name`, if it has arrived.
    #[must_use]
    pub fn tensor(&self, name: &TensorName) -> Option<&Tensor> {
        self.recorder.tensor(name)
    }

    /// How many steps seed `seed_idx` has recorded.
    #[must_use]
    pub fn steps_taken(&self, seed_idx: usize) -> usize {
        self.manifest().seeds.get(seed_idx).map_or(0, |seed| seed.steps.len())
    }

    /// The step seed `seed_idx` takes next: one past its last recorded step, or for a fork
    /// that has not stepped yet, its branch step. Equals the schedule's step count once done.
    #[must_use]
    pub fn next_step(&self, seed_idx: usize) -> usize {
        let Some(seed) = self.manifest().seeds.get(seed_idx) else { return 0 };
        seed.steps.last().map_or_else(|| seed.forked_from.map_or(0, |fork| fork.step), |&last| last + 1)
    }

    /// The recorder, to write the run to a file (clone it to write on another thread).
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}
