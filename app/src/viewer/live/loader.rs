//! Loading a live run's model off the UI thread: a named thread turns the [`LiveSetup`] into a
//! [`RunRequest`] (reading the weights, generating the task instance) and the empty
//! [`LiveRecord`] the window fills (its manifest comes from a sampling session built for the
//! request, which the UI thread never builds) while the window keeps drawing, and the window
//! polls for the outcome each frame.

use std::time::Instant;

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, TryRecvError, bounded};
use stepscope_engine::trajectory::StorageDtype;
use stepscope_engine::worker::{LiveRecord, RunRequest};

use super::setup::LiveSetup;

/// A loaded run: what the engine starts, and the record the window fills from its events.
#[derive(Debug)]
pub struct LoadedRun {
    pub request: RunRequest,
    pub record: LiveRecord,
    /// A pipeline run's VAE folder: its steps can be decoded to pixels.
    pub vae_dir: Option<std::path::PathBuf>,
}

impl LoadedRun {
    fn load(setup: &LiveSetup) -> Result<Self> {
        let request = setup.to_request()?;
        let record = LiveRecord::new(&request, StorageDtype::F32)?;
        let vae_dir = if setup.task.is_none() && setup.is_pipeline() {
            Some(stepscope_engine::pipeline::PipelineFolder::open(&setup.model_dir)?.vae)
        } else {
            None
        };
        Ok(Self { request, record, vae_dir })
    }
}

/// A model being loaded for a live run.
#[derive(Debug)]
pub struct PendingLoad {
    pub setup: LiveSetup,
    pub started: Instant,
    done: Receiver<Result<LoadedRun, String>>,
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
                let _ignored = sender.send(LoadedRun::load(&job).map_err(|err| format!("{err:#}")));
                ctx.request_repaint();
            })
            .context("starting the model-loading thread")?;
        Ok(Self { setup, started: Instant::now(), done })
    }

    /// The request once loaded, or why it failed; `None` while loading.
    #[must_use]
    pub fn poll(&self) -> Option<Result<LoadedRun, String>> {
        match self.done.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err("the model-loading thread stopped unexpectedly".to_owned()))
            }
        }
    }
}
