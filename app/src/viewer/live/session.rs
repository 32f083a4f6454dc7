//! The window's side of live stepping: the engine thread, what it is doing, and saving the run.
//!
//! Events are drained each frame under a time cap and applied to the document's
//! [`LiveRecord`]; the UI never waits on the engine. Each run gets a [`RunId`]: events of a run
//! since replaced are dropped by id, and what the engine is doing is what it last reported
//! (commands handled, idle or running), not what the window asked for. Saving writes a snapshot of the record
//! (tensors are shared, so the snapshot is cheap) on its own named thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TryRecvError};
use stepscope_engine::session::AttentionMaps;
use stepscope_engine::worker::{
    EngineCommand, EngineEvent, EngineHandle, EngineMode, EngineState, LiveRecord, RecordChange, RunId,
    RunRequest,
};

/// The longest the UI spends taking events in one frame.
const DRAIN_BUDGET: Duration = Duration::from_millis(2);

/// What the engine is doing for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Idle,
    /// Commands were sent that the engine has not handled yet (a step, a fork, a start).
    Working,
    /// `seed_idx` runs until it finishes or is paused.
    Running {
        seed_idx: usize,
    },
}

/// How the engine answered a request for attention maps.
#[derive(Debug, Clone)]
pub enum AttentionAnswer {
    Maps {
        seed_idx: usize,
        maps: Arc<AttentionMaps>,
    },
    /// The request failed; the reason is in [`LiveSession::error`].
    Failed,
}

/// The engine thread and the state of the run it works on.
#[derive(Debug)]
pub struct LiveSession {
    engine: EngineHandle,
    /// The run the window shows; events of other runs are dropped.
    run: Option<RunId>,
    /// The engine's last report of its state.
    engine_state: EngineState,
    /// The last error the engine reported, until dismissed.
    pub error: Option<String>,
    save: Option<SaveJob>,
    /// What the last save did, in words.
    pub save_status: Option<String>,
    /// The noise seed the next fork uses.
    pub fork_rng_seed: u64,
    /// Whether attention maps were asked for and not answered yet.
    attention_asked: bool,
    /// The latest answer, until the window takes it.
    attention: Option<AttentionAnswer>,
    /// The intervention being prepared.
    pub intervene: super::InterveneState,
    /// A pipeline run's VAE on its own thread, to decode steps to pixels.
    pub decoder: Option<super::LiveDecoder>,
}

/// A save in progress on its own thread.
#[derive(Debug)]
struct SaveJob {
    path: PathBuf,
    done: Receiver<Result<(), String>>,
}

impl LiveSession {
    /// Starts the engine thread; it asks `ctx` for a repaint after each event.
    pub fn spawn(ctx: &egui::Context) -> Result<Self> {
        let ctx = ctx.clone();
        let engine =
            EngineHandle::spawn(move || ctx.request_repaint()).context("starting the engine thread")?;
        Ok(Self {
            engine,
            run: None,
            engine_state: EngineState::default(),
            error: None,
            save: None,
            save_status: None,
            fork_rng_seed: 1,
            attention_asked: false,
            attention: None,
            intervene: super::InterveneState::default(),
            decoder: None,
        })
    }

    /// Starts `request` as a new run (replacing any other) under a new run id.
    pub fn start(&mut self, request: RunRequest) {
        self.fork_rng_seed = match request.noise {
            stepscope_engine::session::NoiseSource::Seed(seed) => seed.wrapping_add(1),
            stepscope_engine::session::NoiseSource::Given(_) => 1,
        };
        let run = RunId(self.run.map_or(1, |RunId(last)| last + 1));
        if self.send(EngineCommand::Start { run, request: Box::new(request) }) {
            self.run = Some(run);
        }
    }

    /// Queues `command`; a full queue or a stopped thread shows as an error. Returns whether
    /// the command was queued.
    pub fn send(&mut self, command: EngineCommand) -> bool {
        let asks_attention = matches!(command, EngineCommand::InspectAttention { .. });
        match self.engine.send(command) {
            Ok(()) => {
                self.attention_asked |= asks_attention;
                true
            }
            Err(err) => {
                self.error = Some(err.to_string());
                false
            }
        }
    }

    /// What the engine is doing, from its last report: working through commands it has not
    /// handled yet, running a seed, or idle.
    #[must_use]
    pub fn activity(&self) -> Activity {
        if self.engine_state.commands_handled < self.engine.commands_sent() {
            return Activity::Working;
        }
        match self.engine_state.mode {
            EngineMode::Idle => Activity::Idle,
            EngineMode::Running { seed_idx } => Activity::Running { seed_idx },
        }
    }

    /// Whether the engine is working on something the window asked for.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.activity() != Activity::Idle
    }

    /// Takes the events that have arrived (within the frame's budget) into `record`, returning
    /// what changed; also collects a finished save.
    pub fn poll(&mut self, mut record: Option<&mut LiveRecord>) -> Vec<RecordChange> {
        self.poll_save();
        let messages = self.engine.drain(DRAIN_BUDGET);
        let mut changes = Vec::new();
        for message in messages {
            if let EngineEvent::State(state) = message.event {
                self.engine_state = state;
                continue;
            }
            // Events of a run since replaced (still queued when the new one started).
            if message.run != self.run {
                continue;
            }
            self.follow(&message.event);
            if let Some(record) = record.as_deref_mut() {
                changes.extend(record.apply(&message.event));
            }
        }
        changes
    }

    /// Takes in errors and attention maps from one of the run's events.
    fn follow(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::Error { message } => {
                self.error = Some(message.clone());
                if std::mem::take(&mut self.attention_asked) {
                    self.attention = Some(AttentionAnswer::Failed);
                }
            }
            EngineEvent::Attention { seed_idx, maps } => {
                self.attention_asked = false;
                self.attention = Some(AttentionAnswer::Maps { seed_idx: *seed_idx, maps: Arc::clone(maps) });
            }
            _ => {}
        }
    }

    /// The engine's latest answer to a request for attention maps, once.
    pub fn take_attention(&mut self) -> Option<AttentionAnswer> {
        self.attention.take()
    }

    /// Writes `record` to `path` on a background thread (atomically: an existing file is
    /// replaced only once the new one is complete).
    pub fn save(&mut self, record: &LiveRecord, path: &Path, ctx: &egui::Context) {
        let recorder = record.recorder().clone();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let target = path.to_owned();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("stepscope-save".to_owned()).spawn(move || {
            let result = recorder.write(&target).map_err(|err| err.to_string());
            let _ = done_tx.send(result);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => {
                self.save_status = Some(format!("Saving to {}…", path.display()));
                self.save = Some(SaveJob { path: path.to_owned(), done: done_rx });
            }
            Err(err) => self.save_status = Some(format!("Could not start saving: {err}")),
        }
    }

    /// Whether a save is being written.
    #[must_use]
    pub fn is_saving(&self) -> bool {
        self.save.is_some()
    }

    fn poll_save(&mut self) {
        let Some(job) = &self.save else { return };
        let result = match job.done.try_recv() {
            Ok(result) => result,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => Err("the saving thread stopped".to_owned()),
        };
        self.finish_save(result);
    }

    fn finish_save(&mut self, result: Result<(), String>) {
        let Some(job) = self.save.take() else { return };
        self.save_status = Some(match result {
            Ok(()) => format!("Saved {}", job.path.display()),
            Err(message) => format!("Saving {} failed: {message}", job.path.display()),
        });
    }

    /// Waits up to `timeout` for a save in progress to finish (tests, and closing the window).
    pub fn wait_for_save(&mut self, timeout: Duration) {
        if let Some(job) = &self.save
            && let Ok(result) = job.done.recv_timeout(timeout)
        {
            self.finish_save(result);
        }
    }
}
