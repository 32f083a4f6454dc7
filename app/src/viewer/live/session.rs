//! The window's side of live stepping: the engine thread, what it is doing, and saving the run.
//!
//! Events are drained each frame under a time cap and applied to the document's
//! [`LiveRecord`]; the UI never waits on the engine. Saving writes a snapshot of the record
//! (tensors are shared, so the snapshot is cheap) on its own named thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TryRecvError};
use stepscope_engine::session::AttentionMaps;
use stepscope_engine::worker::{
    EngineCommand, EngineEvent, EngineHandle, LiveRecord, RecordChange, RunRequest,
};

/// The longest the UI spends taking events in one frame.
const DRAIN_BUDGET: Duration = Duration::from_millis(2);

/// What the engine is doing for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Idle,
    /// One step of `seed_idx` was asked for.
    Stepping {
        seed_idx: usize,
    },
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
    /// After a start, events of the previous run may still be queued; they are skipped until
    /// the new run's seed 0 is confirmed.
    awaiting_start: bool,
    pub activity: Activity,
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
            awaiting_start: false,
            activity: Activity::Idle,
            error: None,
            save: None,
            save_status: None,
            fork_rng_seed: 1,
            attention_asked: false,
            attention: None,
            intervene: super::InterveneState::default(),
        })
    }

    /// Starts `request` as a new run (replacing any other).
    pub fn start(&mut self, request: RunRequest) {
        self.fork_rng_seed = match request.noise {
            stepscope_engine::session::NoiseSource::Seed(seed) => seed.wrapping_add(1),
            stepscope_engine::session::NoiseSource::Given(_) => 1,
        };
        if self.send(EngineCommand::Start(Box::new(request))) {
            self.awaiting_start = true;
            self.activity = Activity::Idle;
        }
    }

    /// Queues `command`; a full queue or a stopped thread shows as an error. Returns whether
    /// the command was queued.
    pub fn send(&mut self, command: EngineCommand) -> bool {
        let activity = match &command {
            EngineCommand::Step { seed_idx } => Some(Activity::Stepping { seed_idx: *seed_idx }),
            EngineCommand::RunToEnd { seed_idx } => Some(Activity::Running { seed_idx: *seed_idx }),
            EngineCommand::Pause | EngineCommand::Rewind { .. } => Some(Activity::Idle),
            _ => None,
        };
        let asks_attention = matches!(command, EngineCommand::InspectAttention { .. });
        match self.engine.send(command) {
            Ok(()) => {
                if let Some(activity) = activity {
                    self.activity = activity;
                }
                self.attention_asked |= asks_attention;
                true
            }
            Err(err) => {
                self.error = Some(err.to_string());
                false
            }
        }
    }

    /// Whether the engine is working on something the window asked for.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.activity != Activity::Idle || self.awaiting_start
    }

    /// Takes the events that have arrived (within the frame's budget) into `record`, returning
    /// what changed; also collects a finished save.
    pub fn poll(&mut self, record: Option<&mut LiveRecord>) -> Vec<RecordChange> {
        self.poll_save();
        let events = self.engine.drain(DRAIN_BUDGET);
        let Some(record) = record else { return Vec::new() };
        let mut changes = Vec::new();
        for event in events {
            if self.awaiting_start {
                match event {
                    EngineEvent::SeedStarted { forked_from: None, .. } => self.awaiting_start = false,
                    EngineEvent::Error { message } => {
                        self.awaiting_start = false;
                        self.error = Some(message);
                    }
                    _ => {}
                }
                continue;
            }
            self.follow_activity(&event);
            changes.extend(record.apply(&event));
        }
        changes
    }

    /// Updates what the engine is doing from one of its events.
    fn follow_activity(&mut self, event: &EngineEvent) {
        match event {
            EngineEvent::StepCaptured { seed_idx, .. } => {
                if self.activity == (Activity::Stepping { seed_idx: *seed_idx }) {
                    self.activity = Activity::Idle;
                }
            }
            EngineEvent::Finished { .. } | EngineEvent::Paused { .. } | EngineEvent::Rewound { .. } => {
                self.activity = Activity::Idle;
            }
            EngineEvent::Error { message } => {
                self.activity = Activity::Idle;
                self.error = Some(message.clone());
                if std::mem::take(&mut self.attention_asked) {
                    self.attention = Some(AttentionAnswer::Failed);
                }
            }
            EngineEvent::Attention { seed_idx, maps } => {
                self.attention_asked = false;
                self.attention = Some(AttentionAnswer::Maps { seed_idx: *seed_idx, maps: Arc::clone(maps) });
            }
            EngineEvent::SeedStarted { .. } => {}
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
