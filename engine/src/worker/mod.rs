//! The engine thread: a named background thread that owns the model and the sampling sessions,
//! driven by commands over a bounded channel and reporting events over another.
//!
//! The UI never blocks on it: [`EngineHandle::send`] fails at once when the command queue is
//! full, and [`EngineHandle::drain`] takes what has arrived within a time budget. After every
//! event the thread calls the repaint callback, so an idle UI wakes up. Each event names the
//! run it belongs to, and after each command the thread reports its state (commands handled,
//! idle or running), so the window shows what the engine does rather than what it asked for.
//! Dropping the handle stops the thread after its current step and joins it.
mod live_record;
mod messages;
mod runner;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

pub use live_record::{LiveRecord, RecordChange};
pub use messages::{EngineCommand, EngineEvent, EngineMessage, EngineMode, EngineState, RunId, RunRequest};
use runner::Runner;

/// Commands that may wait for the thread; more is a UI bug or a stuck engine.
const COMMAND_CAPACITY: usize = 64;
/// Events that may wait for the UI; when full, the engine waits (back-pressure).
const EVENT_CAPACITY: usize = 256;
const THREAD_NAME: &str = "stepscope-engine";

/// Why a command was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the engine is busy: its command queue is full")]
    Full,
    #[error("the engine thread has stopped")]
    Stopped,
}

/// The UI's end of the engine thread.
#[derive(Debug)]
pub struct EngineHandle {
    commands: Sender<EngineCommand>,
    events: Receiver<EngineMessage>,
    thread: Option<JoinHandle<()>>,
    /// Commands queued so far (the thread's [`EngineState::commands_handled`] catches up).
    sent: AtomicU64,
}

impl EngineHandle {
    /// Starts the engine thread; `request_repaint` is called after every event it sends.
    pub fn spawn(request_repaint: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (command_tx, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
        let (event_tx, event_rx) = crossbeam_channel::bounded(EVENT_CAPACITY);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || engine_loop(&command_rx, &event_tx, &request_repaint))?;
        Ok(Self { commands: command_tx, events: event_rx, thread: Some(thread), sent: AtomicU64::new(0) })
    }

    /// Queues `command` without waiting.
    pub fn send(&self, command: EngineCommand) -> Result<(), SendError> {
        self.commands.try_send(command).map_err(|err| match err {
            TrySendError::Full(_) => SendError::Full,
            TrySendError::Disconnected(_) => SendError::Stopped,
        })?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many commands have been queued: the engine has caught up when its reported
    /// [`EngineState::commands_handled`] equals this.
    #[must_use]
    pub fn commands_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Takes the events that have arrived, stopping early once `budget` has passed.
    #[must_use]
    pub fn drain(&self, budget: Duration) -> Vec<EngineMessage> {
        let start = Instant::now();
        let mut events = Vec::new();
        while start.elapsed() < budget {
            match self.events.try_recv() {
                Ok(event) => events.push(event),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        events
    }

    /// Waits up to `timeout` for the next event (for tests and headless callers, not the UI).
    #[must_use]
    pub fn recv_timeout(&self, timeout: Duration) -> Option<EngineMessage> {
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // A full queue still gets the message: Shutdown waits behind the queued commands, and
        // dropping the sender below ends the loop in any case.
        let _ = self.commands.try_send(EngineCommand::Shutdown);
        let (replacement, _) = crossbeam_channel::bounded(1);
        drop(std::mem::replace(&mut self.commands, replacement));
        // Unblock a thread waiting to send an event.
        while self.events.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the thread is doing between commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Running { seed_idx: usize },
}

fn engine_loop(commands: &Receiver<EngineCommand>, events: &Sender<EngineMessage>, repaint: &dyn Fn()) {
    let mut runner = Runner::default();
    let mut mode = Mode::Idle;
    let mut run = None;
    let mut handled = 0u64;
    let emit = |run: Option<RunId>, event: EngineEvent| {
        let delivered = events.send(EngineMessage { run, event }).is_ok();
        repaint();
        delivered
    };
    let state = |handled: u64, mode: Mode| {
        let mode = match mode {
            Mode::Idle => EngineMode::Idle,
            Mode::Running { seed_idx } => EngineMode::Running { seed_idx },
        };
        EngineEvent::State(EngineState { commands_handled: handled, mode })
    };
    loop {
        // While running, look at commands without waiting; while idle, wait for one.
        let command = match mode {
            Mode::Idle => commands.recv().ok(),
            Mode::Running { .. } => match commands.try_recv() {
                Ok(command) => Some(command),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            },
        };
        if let Some(command) = command {
            if let EngineCommand::Start { run: started, .. } = &command {
                run = Some(*started);
            }
            let (next_mode, outcome) = handle(&mut runner, mode, command);
            let Some(next_mode) = next_mode else { return };
            mode = next_mode;
            handled += 1;
            for event in outcome.into_iter().chain([state(handled, mode)]) {
                if !emit(run, event) {
                    return;
                }
            }
            continue;
        } else if mode == Mode::Idle {
            return; // every sender is gone
        }
        if let Mode::Running { seed_idx } = mode {
            let mut outcome = runner.step(seed_idx).unwrap_or_else(|err| {
                mode = Mode::Idle;
                vec![EngineEvent::Error { message: format!("seed {seed_idx}: {err}") }]
            });
            if runner.is_finished(seed_idx) {
                mode = Mode::Idle;
            }
            if mode == Mode::Idle {
                outcome.push(state(handled, mode));
            }
            for event in outcome {
                if !emit(run, event) {
                    return;
                }
            }
        }
    }
}

/// Applies one command; `None` as the mode means shut down.
fn handle(runner: &mut Runner, mode: Mode, command: EngineCommand) -> (Option<Mode>, Vec<EngineEvent>) {
    let error = |err: crate::session::SessionError| vec![EngineEvent::Error { message: err.to_string() }];
    match command {
        EngineCommand::Shutdown => (None, Vec::new()),
        EngineCommand::Start { request, .. } => {
            (Some(Mode::Idle), runner.start(*request).map_or_else(error, |e| vec![e]))
        }
        EngineCommand::Step { seed_idx } => (Some(Mode::Idle), runner.step(seed_idx).unwrap_or_else(error)),
        EngineCommand::RunToEnd { seed_idx } => {
            if runner.is_finished(seed_idx) {
                (Some(mode), Vec::new())
            } else {
                (Some(Mode::Running { seed_idx }), Vec::new())
            }
        }
        EngineCommand::Pause => match mode {
            Mode::Running { seed_idx } => (
                Some(Mode::Idle),
                vec![EngineEvent::Paused { seed_idx, step_idx: runner.step_idx(seed_idx) }],
            ),
            Mode::Idle => (Some(Mode::Idle), Vec::new()),
        },
        EngineCommand::Fork { seed_idx, step_idx, rng_seed } => {
            (Some(mode), runner.fork(seed_idx, step_idx, rng_seed).map_or_else(error, |e| vec![e]))
        }
        EngineCommand::Intervene { seed_idx, step_idx, intervention } => {
            (Some(mode), runner.intervene(seed_idx, step_idx, intervention).map_or_else(error, |e| vec![e]))
        }
        EngineCommand::InspectAttention { seed_idx, step_idx, query_token } => (
            Some(mode),
            runner.inspect_attention(seed_idx, step_idx, query_token).map_or_else(error, |e| vec![e]),
        ),
        EngineCommand::Rewind { seed_idx, step_idx } => {
            let mode = if mode == (Mode::Running { seed_idx }) { Mode::Idle } else { mode };
            (Some(mode), runner.rewind(seed_idx, step_idx).map_or_else(error, |e| vec![e]))
        }
    }
}
