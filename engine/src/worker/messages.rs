//! What the UI asks of the engine thread, and what it hears back.
use std::sync::Arc;

use candle_core::Tensor;

use crate::model::WanTransformer;
use crate::recording::{Recorder, RunProvenance};
use crate::scheduler::Schedule;
use crate::session::{
    AttentionMaps, Conditioning, NoiseSource, SamplingSession, SessionError, SessionSettings, StepRecord,
};
use crate::trajectory::{self, Intervention, StorageDtype};

/// Everything needed to start a run (its first seed).
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub model: Arc<WanTransformer>,
    pub conditioning: Arc<Conditioning>,
    pub settings: SessionSettings,
    /// `[C, F, H, W]`
    pub latent_shape: [usize; 4],
    pub noise: NoiseSource,
    /// Where the model and prompt came from, for the file a live run is saved to.
    pub provenance: RunProvenance,
    /// Wan2.2 A14B's low-noise expert and the pipeline's `boundary_ratio` (`model` being the
    /// high-noise expert); `None` for a single transformer.
    pub low_noise_expert: Option<(Arc<WanTransformer>, f64)>,
}

impl RunRequest {
    /// An empty recorder for this run, with seed 0 registered: what the UI fills from the
    /// engine's events and saves. Checks the request as starting it would.
    pub fn recorder(&self, storage: StorageDtype) -> Result<Recorder, SessionError> {
        let session = self.session()?;
        let mut recorder = Recorder::new(&session, self.provenance.clone(), storage);
        recorder.add_seed(self.noise_record(), None);
        Ok(recorder)
    }

    /// The run's first seed as a session entering step 0, with both experts where there are two.
    pub fn session(&self) -> Result<SamplingSession, SessionError> {
        let session = SamplingSession::new(
            Arc::clone(&self.model),
            Arc::clone(&self.conditioning),
            self.settings.clone(),
            self.latent_shape,
            &self.noise,
        )?;
        match &self.low_noise_expert {
            Some((low_noise, boundary_ratio)) => {
                session.with_low_noise_expert(Arc::clone(low_noise), *boundary_ratio)
            }
            None => Ok(session),
        }
    }

    /// How the file describes this run's noise.
    #[must_use]
    pub fn noise_record(&self) -> trajectory::NoiseSource {
        match self.noise {
            NoiseSource::Seed(rng_seed) => trajectory::NoiseSource::RngSeed(rng_seed),
            NoiseSource::Given(_) => trajectory::NoiseSource::Given,
        }
    }
}

/// Which run an event belongs to: the id the window gave the run when it started it, so that
/// events of a run since replaced (still queued when the new one starts) are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub u64);

/// What the engine thread is doing, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineMode {
    /// Waiting for a command.
    #[default]
    Idle,
    /// Stepping `seed_idx` until it finishes or is paused.
    Running { seed_idx: usize },
}

/// The engine's state after a command: how many commands it has handled since it started
/// (the window compares this with how many it sent, instead of guessing) and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineState {
    pub commands_handled: u64,
    pub mode: EngineMode,
}

/// An event with the run it belongs to (`None` before the first run was started).
#[derive(Debug, Clone)]
pub struct EngineMessage {
    pub run: Option<RunId>,
    pub event: EngineEvent,
}

/// Commands from the UI to the engine thread. Between two steps the thread always reads its
/// commands, so `Pause` and `Cancel` take effect after the step in progress.
#[derive(Debug)]
pub enum EngineCommand {
    /// Starts a new run as seed 0, dropping any previous run; its events carry `run`.
    Start { run: RunId, request: Box<RunRequest> },
    /// Takes one step of `seed_idx`.
    Step { seed_idx: usize },
    /// Steps `seed_idx` until it finishes or is paused.
    RunToEnd { seed_idx: usize },
    /// Stops running after the current step.
    Pause,
    /// Adds a seed that branches from `seed_idx` at the state entering `step_idx`, re-noised
    /// with `rng_seed` (see [`crate::session::SamplingSession::fork_renoised`]).
    Fork { seed_idx: usize, step_idx: usize, rng_seed: u64 },
    /// Adds a seed that branches from `seed_idx` at the state entering `step_idx`, altered by
    /// `intervention` (painting needs `step_idx >= 1`: it paints step `step_idx - 1`'s
    /// `x0_hat`).
    Intervene { seed_idx: usize, step_idx: usize, intervention: Intervention },
    /// Puts `seed_idx` back to the state entering `step_idx`; later steps are forgotten.
    Rewind { seed_idx: usize, step_idx: usize },
    /// Repeats the forward pass of `step_idx` of `seed_idx` with attention kept for
    /// `query_token` (a flat index into the token grid) at every layer; the run is unchanged.
    InspectAttention { seed_idx: usize, step_idx: usize, query_token: usize },
    /// Ends the thread.
    Shutdown,
}

/// Events from the engine thread to the UI; each send is followed by a repaint request.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// A seed exists and is at `step_idx` (0 for a new run, the fork step for a fork).
    SeedStarted {
        seed_idx: usize,
        step_idx: usize,
        forked_from: Option<(usize, usize)>,
        /// The seed of the noise it started from (or was re-noised with, for a fork); `None`
        /// for given noise, or a fork that kept its parent's noise.
        rng_seed: Option<u64>,
        /// How a fork was altered, if it was.
        intervention: Option<Intervention>,
        schedule: Schedule,
        latent_shape: [usize; 4],
    },
    /// One step of one seed was taken.
    StepCaptured { seed_idx: usize, record: Arc<StepRecord> },
    /// A seed took its last step; `final_latents` is `[C, F, H, W]`.
    Finished { seed_idx: usize, final_latents: Tensor },
    /// A seed was put back to `step_idx`.
    Rewound { seed_idx: usize, step_idx: usize },
    /// Running stopped on request.
    Paused { seed_idx: usize, step_idx: usize },
    /// Where a query token attends, as asked by [`EngineCommand::InspectAttention`].
    Attention { seed_idx: usize, maps: Arc<AttentionMaps> },
    /// A command failed, or a step failed or panicked; the thread carries on.
    Error { message: String },
    /// Sent after every command the thread handles, and when running stops on its own (the
    /// seed finished or a step failed).
    State(EngineState),
}
