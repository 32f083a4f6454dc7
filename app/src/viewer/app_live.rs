//! The window's live-run half: starting a run on the engine thread, taking in its steps,
//! and the user's step / run / pause / fork / rewind / save.

use std::path::Path;

use stepscope_engine::trajectory::{Intervention, TensorName};
use stepscope_engine::worker::{EngineCommand, RecordChange};

use super::app::StepscopeApp;
use super::app_files::FileRequest;
use super::command::AppCommand;
use super::document::Document;
use super::live::{
    LiveAction, LiveDecoder, LiveSession, LiveSetup, LoadedRun, PendingLoad, intervene_ui, live_controls_ui,
};
use super::seeds_view::SEEDS_VIEW_ID;
use super::time_control::TimeCommand;
use super::view::ViewEvent;

impl StepscopeApp {
    /// Whether the window shows a live run.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.document.as_ref().is_some_and(|document| document.live_record().is_some())
    }

    /// The engine thread's state, once a live run was started.
    #[must_use]
    pub fn live_session(&self) -> Option<&LiveSession> {
        self.live.as_ref()
    }

    /// Loads what `setup` names on a loading thread, then starts it on the engine thread,
    /// showing it as it arrives. A failure (the model does not load, ...) reopens the dialog
    /// with the reason.
    pub fn start_live(&mut self, ctx: &egui::Context, setup: LiveSetup) {
        self.settings.live_setup = setup.clone();
        match PendingLoad::spawn(ctx, setup.clone()) {
            Ok(pending) => self.loading = Some(pending),
            Err(err) => self.live_start_failed(setup, &format!("{err:#}")),
        }
    }

    /// Whether a live run's model is being loaded.
    #[must_use]
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    fn live_start_failed(&mut self, setup: LiveSetup, reason: &str) {
        self.new_run_dialog.show(setup);
        self.new_run_dialog.error = Some(reason.to_owned());
    }

    /// Starts the loaded run once its model is in.
    pub(super) fn poll_loading(&mut self, ctx: &egui::Context) {
        let Some(outcome) = self.loading.as_ref().and_then(PendingLoad::poll) else { return };
        let Some(pending) = self.loading.take() else { return };
        let started =
            outcome.and_then(|request| self.start_loaded(ctx, request).map_err(|err| format!("{err:#}")));
        if let Err(reason) = started {
            self.live_start_failed(pending.setup, &reason);
        }
    }

    fn start_loaded(&mut self, ctx: &egui::Context, loaded: LoadedRun) -> anyhow::Result<()> {
        let LoadedRun { request, record, vae_dir } = loaded;
        let request_device = request.model.device().clone();
        if self.live.is_none() {
            self.live = Some(LiveSession::spawn(ctx)?);
        }
        if let Some(live) = &mut self.live {
            live.start(request);
            let (wake, device) = (ctx.clone(), request_device);
            live.decoder = vae_dir
                .map(|dir| LiveDecoder::spawn(dir, device, move || wake.request_repaint()))
                .transpose()?;
        }
        self.show_document(Document::live(record));
        Ok(())
    }

    /// "Loading the model…" with a spinner, while a load is in progress.
    pub(super) fn loading_ui(&self, ui: &mut egui::Ui) {
        let Some(pending) = &self.loading else { return };
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!(
                "Loading the model from {} ({:.1} s)",
                pending.setup.model_dir.display(),
                pending.started.elapsed().as_secs_f32()
            ));
        });
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
    }

    /// Takes in the engine's events: new steps drop stale cached frames, and the cursor follows
    /// the newest step of the shown seed when it was on the one before.
    /// A live run parked in the runs list keeps filling; its cached tensors of changed steps
    /// are dropped.
    pub(super) fn poll_live(&mut self) {
        let Some(live) = &mut self.live else { return };
        let shown_is_live = self.document.as_ref().is_some_and(|document| document.live_record().is_some());
        if !shown_is_live {
            if let Some(parked) = self.runs.live_mut() {
                for change in live.poll(parked.document.live_record_mut()) {
                    if let RecordChange::Step { seed_idx, .. } | RecordChange::Rewound { seed_idx, .. } =
                        change
                    {
                        parked.caches.tensors.forget(|name| name.seed_idx() == seed_idx);
                    }
                }
            }
            return;
        }
        let Some(document) = &mut self.document else { return };
        let changes = live.poll(document.live_record_mut());
        if !changes.is_empty() {
            self.generation += 1;
        }
        // The cursor and seed as they will be once the commands below are applied, so that
        // several steps arriving at once are followed one after the other.
        let (mut cursor_step, mut shown_seed) = (self.time.step_idx(), document.seed_idx);
        let mut commands = Vec::new();
        for change in changes {
            match change {
                RecordChange::Step { seed_idx, step_idx } => {
                    self.caches
                        .tensors
                        .forget(|name| name.seed_idx() == seed_idx && name.step_idx() == Some(step_idx));
                    if let Some(decoder) = &mut live.decoder
                        && decoder.follow
                        && seed_idx == shown_seed
                        && let Some(x0) = document
                            .live_record()
                            .and_then(|record| record.tensor(&TensorName::x0(seed_idx, step_idx)))
                    {
                        decoder.request(seed_idx, step_idx, x0.clone());
                    }
                    let follows = step_idx == 0 || cursor_step + 1 >= step_idx;
                    if seed_idx == shown_seed && follows {
                        cursor_step = step_idx;
                        commands.push(AppCommand::Time(TimeCommand::SetStep(step_idx)));
                    }
                }
                RecordChange::Rewound { seed_idx, step_idx } => {
                    self.caches.tensors.forget(|name| {
                        name.seed_idx() == seed_idx && name.step_idx().is_none_or(|step| step >= step_idx)
                    });
                }
                RecordChange::SeedAdded { seed_idx } => {
                    shown_seed = seed_idx;
                    commands.push(AppCommand::SelectSeed(seed_idx));
                    // An altered run is shown next to the one it branched from.
                    let altered_from = document
                        .manifest()
                        .seeds
                        .get(seed_idx)
                        .filter(|seed| seed.intervention.is_some())
                        .and_then(|seed| seed.forked_from)
                        .map(|fork| fork.seed_index);
                    for view in &mut self.views {
                        view.on_event(ViewEvent::SeedAdded { seed_idx, altered_from });
                    }
                    if altered_from.is_some() {
                        commands.push(AppCommand::SelectTab(SEEDS_VIEW_ID));
                    }
                }
                RecordChange::Finished { .. } => {}
                RecordChange::Video { seed_idx, step_idx } => {
                    let name = TensorName::Video { seed_idx, step_idx };
                    self.caches.tensors.forget(|cached| *cached == name);
                }
            }
        }
        self.take_decoded();
        for command in commands {
            self.apply(command);
        }
    }

    /// Stores the steps the VAE thread decoded in the live record.
    fn take_decoded(&mut self) {
        let (Some(live), Some(document)) = (&mut self.live, &mut self.document) else { return };
        let Some(decoder) = &mut live.decoder else { return };
        for decoded in decoder.poll() {
            let (seed_idx, step_idx) = (decoded.seed_idx, decoded.step_idx);
            let stored = decoded.video.and_then(|video| {
                let record = document.live_record_mut().ok_or("the live run was closed")?;
                record
                    .insert_video(seed_idx, step_idx, video, "AutoencoderKLWan")
                    .map_err(|err| err.to_string())
            });
            match stored {
                Ok(Some(_)) => {
                    let name = TensorName::Video { seed_idx, step_idx };
                    self.caches.tensors.forget(|cached| *cached == name);
                    self.generation += 1;
                }
                Ok(None) => {}
                Err(message) => live.error = Some(message),
            }
        }
    }

    /// Carries out what the user asked of the live run.
    pub(super) fn apply_live_action(&mut self, ctx: &egui::Context, action: LiveAction) {
        let (Some(live), Some(document)) = (&mut self.live, &self.document) else { return };
        if document.live_record().is_none() {
            return;
        }
        let seed_idx = document.seed_idx;
        match action {
            LiveAction::Step => {
                live.send(EngineCommand::Step { seed_idx });
            }
            LiveAction::RunToEnd => {
                live.send(EngineCommand::RunToEnd { seed_idx });
            }
            LiveAction::Pause => {
                live.send(EngineCommand::Pause);
            }
            LiveAction::Fork { step_idx, rng_seed } => {
                if live.send(EngineCommand::Fork { seed_idx, step_idx, rng_seed }) {
                    live.fork_rng_seed = rng_seed.wrapping_add(1);
                }
            }
            LiveAction::Rewind { step_idx } => {
                live.send(EngineCommand::Rewind { seed_idx, step_idx });
            }
            LiveAction::Save => {
                let default_name = format!("live-seed{}.safetensors", self.settings.live_setup.rng_seed);
                self.request_file(ctx, FileRequest::SaveLiveRun { default_name });
            }
            LiveAction::Decode { step_idx } => {
                let owner = document.owner_of(seed_idx, step_idx);
                let x0 = owner.and_then(|owner| {
                    document
                        .live_record()?
                        .tensor(&TensorName::x0(owner, step_idx))
                        .map(|x0| (owner, x0.clone()))
                });
                if let (Some(decoder), Some((owner, x0))) = (&mut live.decoder, x0) {
                    decoder.request(owner, step_idx, x0);
                }
            }
        }
    }

    /// Saves the live run to `path` on a background thread.
    pub(super) fn save_live_run_to(&mut self, ctx: &egui::Context, path: &Path) {
        let (Some(live), Some(document)) = (&mut self.live, &self.document) else { return };
        let Some(record) = document.live_record() else { return };
        live.save(record, path, ctx);
        self.settings.remember_file(path);
    }

    /// The live run's tool bar, when the window shows one.
    pub(super) fn live_controls_ui(&mut self, ui: &mut egui::Ui) {
        let (Some(live), Some(document)) = (&mut self.live, &self.document) else { return };
        let Some(record) = document.live_record() else { return };
        let (seed_idx, step_idx) = (document.seed_idx, self.time.step_idx());
        let action = live_controls_ui(ui, live, record, seed_idx, step_idx);
        let context = (live.is_busy(), live.fork_rng_seed);
        let request = intervene_ui(ui, &mut live.intervene, record, (seed_idx, step_idx), context);
        ui.separator();
        if let Some(action) = action {
            self.apply_live_action(ui.ctx(), action);
        }
        if let Some(request) = request
            && let Some(live) = &mut self.live
        {
            let members = match &request.intervention {
                Intervention::Ensemble { rng_seeds, .. } => rng_seeds.len() as u64,
                _ => 0,
            };
            let command = EngineCommand::Intervene {
                seed_idx,
                step_idx: request.step_idx,
                intervention: request.intervention,
            };
            if live.send(command) {
                live.fork_rng_seed = live.fork_rng_seed.wrapping_add(members);
            }
        }
    }

    /// Waits for a save in progress (so a test or a closing window does not lose it).
    pub fn wait_for_save(&mut self, timeout: std::time::Duration) {
        if let Some(live) = &mut self.live {
            live.wait_for_save(timeout);
        }
    }
}
