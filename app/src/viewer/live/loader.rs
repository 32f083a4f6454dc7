//! Loading a live run's model off the UI thread: a named thread turns the [`LiveSetup`] into a
//! [`RunRequest`] (reading the weights, generating the task instance) while the window keeps
//! drawing, and the window polls for the outcome each frame.

use std::time::Instant;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TryRecvError, bounded};
use stepscope_engine::worker::RunRequest;

use super::setup::LiveSetup;

/// A model being loaded for a live run.
#[derive(Debug)]
pub struct PendingLoad {
    pub setup: LiveSetup,
    pub started: Instant,
    done: Receiver<Result<RunRequest, String>>,
}

impl PendingLoad {
    /// Starts loading `setup` on a `stepscope-load` thread, which asks `ctx` for a repaint when
    /// it is done.
    pub fn spawn(ctx: &egui::Context, setup: LiveSetup) -> Result<Self> {
        let (sender, done) = bounded(1);
        let ctx = ctx.clone();
        let job = setup.clone();
        std::thread::Builder::new()
            .name("stepscope-load".to_owned())
            .spawn(move || {
                // The window may have moved on (a newer load); then nobody listens.
                let _ignored = sender.send(job.to_request().map_err(|err| format!("{err:#}")));
                ctx.request_repaint();
            })
            .context("starting the model-loading thread")?;
        Ok(Self { setup, started: Instant::now(), done })
    }

    /// The request once loaded, or why it failed; `None` while loading.
    #[must_use]
    pub fn poll(&self) -> Option<Result<RunRequest, String>> {
        match self.done.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err("the model-loading thread stopped unexpectedly".to_owned()))
            }
        }
    }
}
