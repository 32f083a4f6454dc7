//! The engine thread's state: the seeds of the current run, each with the session state
//! entering every step taken so far (sessions share their tensors, so this is cheap).
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use candle_core::Tensor;

use super::messages::{EngineEvent, RunRequest};
use crate::session::{SamplingSession, SessionError};
use crate::trajectory::Intervention;

/// One seed: its session, the session as it entered each step, and each step's `x0_hat`.
#[derive(Debug)]
struct SeedRun {
    session: SamplingSession,
    /// `history[k]` is the session entering step `k`.
    history: Vec<SamplingSession>,
    /// `x0[k]` is step `k`'s `x0_hat`, `[C, F, H, W]`.
    x0: Vec<Tensor>,
    /// For a seed ensemble, the other members while their latents are still being merged.
    ensemble: Option<EnsembleMembers>,
    /// Steps before this one were merged with other members, which are gone: they cannot be
    /// taken again (0 for a plain seed).
    merged_until: usize,
}

/// The members of a seed ensemble besides the seed's own session.
#[derive(Debug)]
struct EnsembleMembers {
    others: Vec<SamplingSession>,
}

impl SeedRun {
    fn new(session: SamplingSession, history: Vec<SamplingSession>, x0: Vec<Tensor>) -> Self {
        Self { session, history, x0, ensemble: None, merged_until: 0 }
    }

    /// Where a branch at `step_idx` starts: the session entering that step, and the prediction
    /// `x0_hat` `[C, F, H, W]` of the step before it (none at step 0).
    fn branch_point(&self, step_idx: usize) -> Result<(SamplingSession, Option<&Tensor>), SessionError> {
        let base = state_entering(self, step_idx)?;
        Ok((base, step_idx.checked_sub(1).and_then(|k| self.x0.get(k))))
    }

    /// After a step of the seed's own session: steps the other members too and puts every
    /// member on the members' mean latent; lets them go once the merged steps are done.
    fn merge_ensemble(&mut self) -> Result<(), SessionError> {
        let Some(ensemble) = &mut self.ensemble else { return Ok(()) };
        let mut sum = self.session.latents()?;
        for member in &mut ensemble.others {
            member.step()?;
            sum = (sum + member.latents()?)?;
        }
        let mean = (sum / (ensemble.others.len() + 1) as f64)?;
        self.session = self.session.fork_with_latents(&mean)?;
        for member in &mut ensemble.others {
            *member = member.fork_with_latents(&mean)?;
        }
        if self.session.step_idx() >= self.merged_until {
            self.ensemble = None;
        }
        Ok(())
    }
}

/// The run the engine thread is working on.
#[derive(Debug, Default)]
pub(crate) struct Runner {
    seeds: Vec<SeedRun>,
}

impl Runner {
    pub(crate) fn start(&mut self, request: RunRequest) -> Result<EngineEvent, SessionError> {
        let session = request.session()?;
        let rng_seed = match request.noise {
            crate::session::NoiseSource::Seed(rng_seed) => Some(rng_seed),
            crate::session::NoiseSource::Given(_) => None,
        };
        let event = seed_started(0, &session, None, rng_seed, None);
        self.seeds = vec![SeedRun::new(session, Vec::new(), Vec::new())];
        Ok(event)
    }

    fn seed(&mut self, seed_idx: usize) -> Result<&mut SeedRun, SessionError> {
        let count = self.seeds.len();
        self.seeds.get_mut(seed_idx).ok_or_else(|| {
            SessionError::Setup(if count == 0 {
                "no run is started".to_owned()
            } else {
                format!("there is no seed {seed_idx} (the run has {count})")
            })
        })
    }

    pub(crate) fn is_finished(&self, seed_idx: usize) -> bool {
        self.seeds.get(seed_idx).is_none_or(|seed| seed.session.is_finished())
    }

    pub(crate) fn step_idx(&self, seed_idx: usize) -> usize {
        self.seeds.get(seed_idx).map_or(0, |seed| seed.session.step_idx())
    }

    /// Takes one step of `seed_idx`; a panic inside the model becomes an error.
    pub(crate) fn step(&mut self, seed_idx: usize) -> Result<Vec<EngineEvent>, SessionError> {
        let seed = self.seed(seed_idx)?;
        let before = seed.session.clone();
        let step_idx = before.step_idx();
        let record = catch_unwind(AssertUnwindSafe(|| seed.session.step())).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(SessionError::Panicked { step_idx, what: what.to_owned() })
        });
        let record = match record.and_then(|record| seed.merge_ensemble().map(|()| record)) {
            Ok(record) => record,
            Err(err) => {
                seed.session = before;
                return Err(err);
            }
        };
        seed.history.push(before);
        seed.x0.push(record.x0.clone());
        let mut events = vec![EngineEvent::StepCaptured { seed_idx, record: Arc::new(record) }];
        if seed.session.is_finished() {
            events.push(EngineEvent::Finished { seed_idx, final_latents: seed.session.latents()? });
        }
        Ok(events)
    }

    pub(crate) fn fork(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        rng_seed: u64,
    ) -> Result<EngineEvent, SessionError> {
        let (base, previous_x0) = self.seed(seed_idx)?.branch_point(step_idx)?;
        let session = base.fork_renoised(previous_x0, rng_seed)?;
        Ok(self.add_fork(session, (seed_idx, step_idx), Some(rng_seed), None))
    }

    /// Adds a fork of `seed_idx` at `step_idx` altered by `intervention`.
    pub(crate) fn intervene(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        intervention: Intervention,
    ) -> Result<EngineEvent, SessionError> {
        let (base, previous_x0) = self.seed(seed_idx)?.branch_point(step_idx)?;
        let session = match &intervention {
            Intervention::PaintX0 { pixels, value } => {
                let previous_x0 = previous_x0.ok_or_else(|| {
                    SessionError::Setup(
                        "painting needs a prediction to paint: continue from step 1 or later".to_owned(),
                    )
                })?;
                base.fork_painted(previous_x0, pixels, value)?
            }
            Intervention::SkipLayers { layers } => base.fork_skipping(layers)?,
            Intervention::Ensemble { rng_seeds, merge_steps } => {
                return self.start_ensemble(seed_idx, step_idx, rng_seeds.clone(), *merge_steps);
            }
        };
        Ok(self.add_fork(session, (seed_idx, step_idx), None, Some(intervention)))
    }

    /// Adds a seed ensemble branching from `seed_idx` at `step_idx` (see
    /// [`Intervention::Ensemble`]).
    fn start_ensemble(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        rng_seeds: Vec<u64>,
        merge_steps: usize,
    ) -> Result<EngineEvent, SessionError> {
        if !(2..=crate::trajectory::MAX_ENSEMBLE_MEMBERS).contains(&rng_seeds.len()) || merge_steps == 0 {
            return Err(SessionError::Setup(format!(
                "an ensemble takes 2 to {} seeds and at least one merged step (got {} seeds, {merge_steps} steps)",
                crate::trajectory::MAX_ENSEMBLE_MEMBERS,
                rng_seeds.len()
            )));
        }
        let (base, previous_x0) = self.seed(seed_idx)?.branch_point(step_idx)?;
        let mut members = rng_seeds
            .iter()
            .map(|&rng_seed| base.fork_renoised(previous_x0, rng_seed))
            .collect::<Result<Vec<_>, _>>()?;
        let first = members.remove(0);
        let total = first.settings().steps;
        let intervention = Intervention::Ensemble { rng_seeds: rng_seeds.clone(), merge_steps };
        let event =
            self.add_fork(first, (seed_idx, step_idx), rng_seeds.first().copied(), Some(intervention));
        if let Some(added) = self.seeds.last_mut() {
            added.ensemble = Some(EnsembleMembers { others: members });
            added.merged_until = (step_idx + merge_steps).min(total);
        }
        Ok(event)
    }

    /// Registers `session` as a fork branching at `(seed_idx, step_idx)`, sharing the parent's
    /// history before the branch point (so it can be rewound there too).
    fn add_fork(
        &mut self,
        session: SamplingSession,
        (seed_idx, step_idx): (usize, usize),
        rng_seed: Option<u64>,
        intervention: Option<Intervention>,
    ) -> EngineEvent {
        let new_idx = self.seeds.len();
        let event = seed_started(new_idx, &session, Some((seed_idx, step_idx)), rng_seed, intervention);
        let seed = &self.seeds[seed_idx];
        let history = seed.history[..step_idx].to_vec();
        let x0 = seed.x0[..step_idx].to_vec();
        self.seeds.push(SeedRun::new(session, history, x0));
        event
    }

    /// Where `query_token` attends at `step_idx` of `seed_idx` (see
    /// [`SamplingSession::attention_of`]).
    pub(crate) fn inspect_attention(
        &mut self,
        seed_idx: usize,
        step_idx: usize,
        query_token: usize,
    ) -> Result<EngineEvent, SessionError> {
        let seed = self.seed(seed_idx)?;
        let maps = state_entering(seed, step_idx)?.attention_of(query_token)?;
        Ok(EngineEvent::Attention { seed_idx, maps: Arc::new(maps) })
    }

    pub(crate) fn rewind(&mut self, seed_idx: usize, step_idx: usize) -> Result<EngineEvent, SessionError> {
        let seed = self.seed(seed_idx)?;
        if step_idx < seed.merged_until && step_idx < seed.session.step_idx() {
            return Err(SessionError::Setup(format!(
                "seed {seed_idx} is an ensemble merged until step {}: its steps before that cannot be \
                 taken again (rewind to step {} or later, or start a new ensemble)",
                seed.merged_until, seed.merged_until
            )));
        }
        seed.session = state_entering(seed, step_idx)?;
        seed.history.truncate(step_idx);
        seed.x0.truncate(step_idx);
        Ok(EngineEvent::Rewound { seed_idx, step_idx })
    }
}

/// The session entering `step_idx`: from the history, or the live one when it is there.
fn state_entering(seed: &SeedRun, step_idx: usize) -> Result<SamplingSession, SessionError> {
    if step_idx == seed.session.step_idx() {
        return Ok(seed.session.clone());
    }
    seed.history.get(step_idx).cloned().ok_or_else(|| {
        SessionError::Setup(format!(
            "step {step_idx} has not been reached (the seed is at step {})",
            seed.session.step_idx()
        ))
    })
}

fn seed_started(
    seed_idx: usize,
    session: &SamplingSession,
    forked_from: Option<(usize, usize)>,
    rng_seed: Option<u64>,
    intervention: Option<Intervention>,
) -> EngineEvent {
    EngineEvent::SeedStarted {
        seed_idx,
        step_idx: session.step_idx(),
        forked_from,
        rng_seed,
        intervention,
        schedule: session.solver().schedule().clone(),
        latent_shape: session.latent_shape(),
    }
}
