//! The eframe application: owns the viewer state and lays out the panels.

use std::path::{Path, PathBuf};

use egui::{Key, Modifiers};
use stepscope_engine::analysis::is_probe_file;

use super::app_export::CaptureTarget;
use super::app_files::FileRequest;
use super::attention_view::AttentionView;
use super::command::{AppCommand, CommandQueue};
use super::dock::Dock;
use super::document::{Document, OpenFailure};
use super::file_browser::FileBrowser;
use super::file_picker::FilePicker;
use super::gpu;
use super::live::{LiveAction, LiveSession, NewRunDialog, PendingLoad};
use super::open_runs::OpenRuns;
use super::picture_jobs::PictureJobs;
use super::probe_view::ProbeView;
use super::runs_list::runs_list_ui;
use super::settings::ViewerSettings;
use super::side_panel::side_panel_ui;
use super::step_view::StepView;
use super::sweep::Sweep;
use super::sweep_window::SweepWindow;
use super::task_panel::task_panel_ui;
use super::time_control::{TimeCommand, TimeControl};
use super::timeline::timeline_ui;
use super::view::{Cursor, FrameOverlay, View, ViewCaches, ViewContext, ViewEvent};
use super::views::registered_views;

/// The longest frame time play advances by, in seconds, so that a stall does not skip steps.
const MAX_PLAY_DT_S: f32 = 0.25;

/// Stepscope's window.
#[derive(Debug)]
pub struct StepscopeApp {
    /// Persisted choices. `fps` and `looping` live in `time` while the app runs.
    pub(super) settings: ViewerSettings,
    /// The file or live run the views show.
    pub(super) document: Option<Document>,
    /// The other runs open, which the runs list shows and the runs view compares.
    pub(super) runs: OpenRuns,
    /// The last file that failed to open, shown until dismissed or another file opens.
    open_failure: Option<OpenFailure>,
    pub(super) time: TimeControl,
    /// What the views read and compute from (tensors, down-sampled frames, statistics).
    pub(super) caches: ViewCaches,
    /// Counts changes to what the document holds (a new document, each live step), so that
    /// analyses of an older state are recomputed.
    pub(super) generation: u64,
    /// The views of the centre, in registration order.
    pub(super) views: Vec<Box<dyn View>>,
    /// How the views are laid out in the centre (tiles the user splits and rearranges).
    pub(super) dock: Dock,
    /// What the panels asked for this frame, applied at its end.
    pub(super) commands: CommandQueue,
    /// A live run's model being loaded.
    pub(super) loading: Option<PendingLoad>,
    /// The window's egui context, for background work to ask for a repaint.
    egui_ctx: egui::Context,
    /// A folder of runs being summarised, in its own window.
    sweep: Option<SweepWindow>,
    /// An open probe result (`stepscope probe`), in its own window.
    probe: Option<ProbeView>,
    pub(super) file_picker: Box<dyn FilePicker>,
    /// The in-window file browser, open where no native dialog answered, with what it is for.
    pub(super) file_browser: Option<(FileRequest, FileBrowser)>,
    /// The engine thread, started with the first live run.
    pub(super) live: Option<LiveSession>,
    pub(super) new_run_dialog: NewRunDialog,
    /// The attention inspector (live runs).
    pub(super) attention: AttentionView,
    /// What the last File > Export did, until dismissed.
    pub(super) export_status: Option<String>,
    /// Pictures being written in the background (exports, captures of the window).
    pub(super) pictures: PictureJobs,
    /// A capture asked for in the last frame, taken at the end of this one (so that the menu
    /// it was asked from is closed by then).
    pub(super) pending_capture: Option<(CaptureTarget, PathBuf)>,
    /// Where the central view (below its tabs) and the probe window were drawn this frame.
    pub(super) view_rect: Option<egui::Rect>,
    pub(super) probe_rect: Option<egui::Rect>,
}

impl StepscopeApp {
    /// The app with the settings from the last session (if eframe has storage), showing the
    /// trajectory at `path` if given.
    #[must_use]
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        path: Option<&Path>,
        file_picker: Box<dyn FilePicker>,
    ) -> Self {
        let settings: ViewerSettings =
            cc.storage.and_then(|storage| eframe::get_value(storage, eframe::APP_KEY)).unwrap_or_default();
        let time = TimeControl::new(0, settings.fps, settings.looping);
        let mut views = registered_views();
        for view in &mut views {
            if let Some(state) = settings.view_states.get(view.id()) {
                view.load_state(state);
            }
        }
        let mut dock = Dock::restore(settings.layout.as_deref(), &views);
        if settings.layout.is_none() && !settings.central_tab.is_empty() {
            // Settings of a version before the tiles name the one view shown.
            dock.show(&settings.central_tab);
        }
        // Without the GPU image path the views fall back to CPU-mapped textures.
        let _gpu_images = gpu::install_for_app(cc);
        let mut app = Self {
            settings,
            dock,
            document: None,
            runs: OpenRuns::default(),
            open_failure: None,
            time,
            caches: ViewCaches::default(),
            generation: 0,
            views,
            commands: CommandQueue::default(),
            loading: None,
            egui_ctx: cc.egui_ctx.clone(),
            sweep: None,
            probe: None,
            file_picker,
            file_browser: None,
            live: None,
            new_run_dialog: NewRunDialog::default(),
            attention: AttentionView::default(),
            export_status: None,
            pictures: PictureJobs::default(),
            pending_capture: None,
            view_rect: None,
            probe_rect: None,
        };
        if let Some(path) = path {
            app.open(path);
        }
        app
    }

    /// Opens the trajectory at `path` and shows it (the run shown so far stays open in the runs
    /// list; a run already open from `path` is read anew), or a probe result in its window. On
    /// failure the current run stays and the error shows in the window.
    pub fn open(&mut self, path: &Path) {
        if path.is_dir() {
            self.open_sweep(path);
            return;
        }
        if is_probe_file(path) {
            match ProbeView::open(path) {
                Ok(view) => {
                    self.settings.remember_file(path);
                    self.probe = Some(view);
                    self.open_failure = None;
                }
                Err(err) => {
                    self.open_failure =
                        Some(OpenFailure { path: path.to_owned(), message: format!("{err:#}") });
                }
            }
            return;
        }
        match Document::open(path) {
            Ok(document) => {
                self.settings.remember_file(path);
                if self.document.as_ref().is_some_and(|shown| shown.path() == Some(path)) {
                    self.document = None;
                }
                if let Some(run_idx) = self.runs.find_path(path) {
                    self.runs.take(run_idx);
                }
                self.show_document(document);
            }
            Err(err) => {
                self.open_failure = Some(OpenFailure { path: path.to_owned(), message: format!("{err:#}") });
            }
        }
    }

    /// Opens the folder `dir` as a sweep: a table of its runs, read on a background thread.
    fn open_sweep(&mut self, dir: &Path) {
        let ctx = self.egui_ctx.clone();
        match Sweep::start(dir, move || ctx.request_repaint()) {
            Ok(sweep) => {
                self.settings.remember_file(dir);
                self.sweep = Some(SweepWindow::new(sweep));
                self.open_failure = None;
            }
            Err(err) => {
                self.open_failure = Some(OpenFailure { path: dir.to_owned(), message: format!("{err:#}") });
            }
        }
    }

    /// The sweep being shown, if a folder was opened.
    #[must_use]
    pub fn sweep(&self) -> Option<&Sweep> {
        self.sweep.as_ref().map(|window| &window.sweep)
    }

    /// Shows `document` on its first step; the run shown so far stays open in the runs list.
    pub(super) fn show_document(&mut self, document: Document) {
        self.show_run(document, 0);
    }

    /// Shows `document` at `step_idx`, parking the run shown so far.
    fn show_run(&mut self, document: Document, step_idx: usize) {
        if let Some(previous) = self.document.take() {
            self.runs.park(previous, self.time.step_idx());
        }
        self.time = TimeControl::new(document.num_steps(), self.time.fps(), self.time.is_looping());
        self.time.apply(TimeCommand::SetStep(step_idx));
        if !document.has_view(self.settings.view) {
            self.settings.view =
                StepView::ALL.into_iter().find(|&view| document.has_view(view)).unwrap_or_default();
        }
        self.caches.clear();
        self.generation += 1;
        self.broadcast(ViewEvent::DocumentShown { num_seeds: document.num_seeds() });
        self.document = Some(document);
        self.open_failure = None;
    }

    /// What the window shows: a file or a live run.
    #[must_use]
    pub fn document(&self) -> Option<&Document> {
        self.document.as_ref()
    }

    /// The step cursor.
    #[must_use]
    pub fn time(&self) -> &TimeControl {
        &self.time
    }

    /// The persisted settings, with the cursor's current fps and looping and each view's state.
    #[must_use]
    pub fn settings(&self) -> ViewerSettings {
        let view_states =
            self.views.iter().filter_map(|view| Some((view.id().to_owned(), view.save_state()?))).collect();
        ViewerSettings {
            fps: self.time.fps(),
            looping: self.time.is_looping(),
            view_states,
            central_tab: self.dock.shown_ids().into_iter().next().unwrap_or_default(),
            layout: self.dock.to_saved(),
            ..self.settings.clone()
        }
    }

    /// Tells every view that something happened to the document.
    pub(super) fn broadcast(&mut self, event: ViewEvent) {
        for view in &mut self.views {
            view.on_event(event);
        }
    }

    /// Applies one change of app state: the one place that writes the cursor, the seed, the
    /// view and the tab.
    pub(super) fn apply(&mut self, command: AppCommand) {
        match command {
            AppCommand::Time(command) => self.time.apply(command),
            AppCommand::SelectSeed(seed_idx) => {
                if let Some(document) = &mut self.document
                    && seed_idx < document.num_seeds()
                {
                    document.seed_idx = seed_idx;
                }
            }
            AppCommand::SelectView(view) => self.settings.view = view,
            AppCommand::SelectTab(id) => self.dock.show(id),
            AppCommand::ResetLayout => self.dock = Dock::tabs_of(&self.views),
            AppCommand::SetColormap(colormap) => self.settings.colormap = colormap,
            AppCommand::FramePointer(pointer) => self.frame_pointer(pointer),
            AppCommand::Open(path) => self.open(&path),
            AppCommand::InspectAttention(token) => self.inspect_attention_of(token),
            AppCommand::ShowRun(run_idx) => {
                if let Some(run) = self.runs.take(run_idx) {
                    self.show_run(run.document, run.step_idx);
                }
            }
            AppCommand::CloseRun(None) => {
                self.document = None;
                self.caches.clear();
                if let Some(run) = self.runs.take_newest() {
                    self.show_run(run.document, run.step_idx);
                }
            }
            AppCommand::CloseRun(Some(run_idx)) => {
                self.runs.take(run_idx);
            }
        }
    }

    /// The runs open besides the one shown.
    #[must_use]
    pub fn open_runs(&self) -> &OpenRuns {
        &self.runs
    }

    /// Applies the commands the panels pushed this frame, in order.
    fn apply_queued(&mut self) {
        for command in self.commands.take() {
            self.apply(command);
        }
    }

    /// Waits up to `timeout` for the analyses the job thread is computing (tests, benchmarks);
    /// the next frame draws them.
    pub fn wait_for_analyses(&mut self, timeout: std::time::Duration) {
        self.caches.stats.wait(timeout);
    }

    /// Whether the job thread is computing an analysis the views asked for.
    #[must_use]
    pub fn is_computing_analyses(&self) -> bool {
        self.caches.stats.is_computing()
    }

    /// How many tensors, measurements and frame levels the loader threads are still making for
    /// the views (of the shown run and the other open runs).
    #[must_use]
    pub fn frames_loading(&self) -> usize {
        let others: usize = self
            .runs
            .runs()
            .iter()
            .map(|run| run.caches.tensors.pending() + run.caches.frame_levels.pending())
            .sum();
        self.caches.tensors.pending() + self.caches.frame_levels.pending() + others
    }

    /// How many (seed, step, view) tensors are loaded for drawing.
    #[must_use]
    pub fn cached_frame_sets(&self) -> usize {
        self.caches.tensors.len()
    }

    /// Files dropped on the window open, each in the runs list (the last one shown); a dropped
    /// folder opens as a sweep.
    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> =
            ctx.input(|input| input.raw.dropped_files.iter().map(|file| file.path().to_owned()).collect());
        for path in dropped {
            self.open(&path);
        }
    }

    /// Space, Left/Right, Home/End drive the cursor; Ctrl+O opens a file, Ctrl+N starts a live
    /// run, Ctrl+S saves one, Ctrl+Shift+S saves the view as PNG; S, R, P step, run and pause it.
    /// Not while a text field has the keyboard.
    fn handle_keys(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let pressed = |modifiers, key| ctx.input_mut(|input| input.consume_key(modifiers, key));
        let bindings = [
            (Key::Space, TimeCommand::TogglePlay),
            (Key::ArrowLeft, TimeCommand::Step(-1)),
            (Key::ArrowRight, TimeCommand::Step(1)),
            (Key::Home, TimeCommand::First),
            (Key::End, TimeCommand::Last),
        ];
        for (key, command) in bindings {
            if pressed(Modifiers::NONE, key) {
                self.commands.push(AppCommand::Time(command));
            }
        }
        if pressed(Modifiers::COMMAND, Key::O) {
            self.request_file(ctx, FileRequest::Open);
        }
        if pressed(Modifiers::COMMAND, Key::N) {
            self.new_run_dialog.show(self.settings.live_setup.clone());
        }
        if pressed(Modifiers::COMMAND | Modifiers::SHIFT, Key::S) && self.document.is_some() {
            self.ask_capture(ctx, CaptureTarget::View, "view.png");
        }
        let live_bindings = [
            (Modifiers::COMMAND, Key::S, LiveAction::Save),
            (Modifiers::NONE, Key::S, LiveAction::Step),
            (Modifiers::NONE, Key::R, LiveAction::RunToEnd),
            (Modifiers::NONE, Key::P, LiveAction::Pause),
        ];
        if self.is_live() {
            for (modifiers, key, action) in live_bindings {
                if pressed(modifiers, key) {
                    self.apply_live_action(ctx, action);
                }
            }
        }
    }

    fn menu_bar_ui(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.add(egui::Button::new("Open…").shortcut_text("Ctrl+O")).clicked() {
                    self.request_file(ui.ctx(), FileRequest::Open);
                }
                if ui.button("Open folder (sweep)…").on_hover_text("A table of the folder's runs").clicked()
                {
                    self.request_file(ui.ctx(), FileRequest::OpenSweep);
                }
                let recent = self.settings.recent_files.clone();
                ui.add_enabled_ui(!recent.is_empty(), |ui| {
                    ui.menu_button("Open Recent", |ui| {
                        for path in &recent {
                            if ui.button(path.display().to_string()).clicked() {
                                self.commands.push(AppCommand::Open(path.clone()));
                            }
                        }
                    });
                });
                if ui.add(egui::Button::new("New live run…").shortcut_text("Ctrl+N")).clicked() {
                    self.new_run_dialog.show(self.settings.live_setup.clone());
                }
                let save = egui::Button::new("Save live run…").shortcut_text("Ctrl+S");
                if ui.add_enabled(self.is_live(), save).clicked() {
                    self.apply_live_action(ui.ctx(), LiveAction::Save);
                }
                ui.separator();
                self.export_menu_ui(ui);
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.settings.show_side_panel, "Side panel");
                if ui.button("Reset layout").on_hover_text("Every view as a tab again").clicked() {
                    self.commands.push(AppCommand::ResetLayout);
                }
                ui.label("Drag a view's tab beside another view to see both at once.");
            });
        });
    }

    fn central_ui(&mut self, ui: &mut egui::Ui) {
        self.loading_ui(ui);
        self.export_status_ui(ui);
        if let Some(failure) = &self.open_failure {
            if open_failure_ui(ui, failure) {
                self.open_failure = None;
            }
            ui.add_space(8.0);
        }
        if self.document.is_none() {
            if self.open_failure.is_none() && self.loading.is_none() {
                ui.centered_and_justified(|ui| {
                    ui.label(
                        "Open a trajectory with File > Open, drop a .safetensors file here, \
                         or start a live run with File > New live run.",
                    );
                });
            }
            return;
        }
        self.live_controls_ui(ui);
        self.view_rect = Some(ui.available_rect_before_wrap());
        let overlay = FrameOverlay { marks: self.paint_marks(), click_hint: self.frame_click_hint() };
        let Some(document) = &self.document else { return };
        let cursor =
            Cursor { seed_idx: document.seed_idx, step_idx: self.time.step_idx(), view: self.settings.view };
        self.caches.stats.sync(self.generation, ui.ctx());
        let mut cx = ViewContext {
            document,
            other_runs: self.runs.runs_mut(),
            cursor,
            colormap: self.settings.colormap,
            caches: &mut self.caches,
            overlay: &overlay,
            commands: &mut self.commands,
        };
        self.dock.ui(ui, &mut self.views, &mut cx);
    }
}

/// A panel naming the file that failed to open and why. Returns whether it was dismissed.
fn open_failure_ui(ui: &mut egui::Ui, failure: &OpenFailure) -> bool {
    let visuals = ui.visuals();
    egui::Frame::group(ui.style())
        .fill(visuals.extreme_bg_color)
        .stroke(egui::Stroke::new(1.0, visuals.error_fg_color))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.colored_label(
                ui.visuals().error_fg_color,
                egui::RichText::new(format!("Could not open {}", failure.path.display())).strong(),
            );
            ui.label(&failure.message);
            ui.button("Dismiss").clicked()
        })
        .inner
}

/// A hint over the whole window while files are dragged over it.
fn drop_hint_ui(ctx: &egui::Context) {
    if ctx.input(|input| input.raw.hovered_files.is_empty()) {
        return;
    }
    let painter =
        ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop_hint")));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(180));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop trajectories (.safetensors) or a folder of them to open",
        egui::FontId::proportional(24.0),
        egui::Color32::WHITE,
    );
}

impl StepscopeApp {
    /// The probe window, if a probe result is open; a click on a step moves the cursor there.
    fn probe_window_ui(&mut self, ctx: &egui::Context) {
        let Some(probe) = &mut self.probe else { return };
        let step_idx = self.document.as_ref().map(|_| self.time.step_idx());
        let output = probe.ui(ctx, self.settings.colormap, step_idx);
        if self.document.is_some() {
            self.commands.go_to_step(output.clicked_step);
        }
        self.probe_rect = output.window_rect;
        let default_name = probe.default_picture_name();
        if !probe.open {
            self.probe = None;
        }
        if output.save_clicked {
            self.ask_capture(ctx, CaptureTarget::ProbeWindow, &default_name);
        }
    }

    /// Whether a probe result is open.
    #[must_use]
    pub fn has_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl eframe::App for StepscopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.handle_dropped_files(&ctx);
        self.handle_keys(&ctx);
        let dt_s = ctx.input(|input| input.stable_dt).min(MAX_PLAY_DT_S);
        if self.time.advance(dt_s) {
            ctx.request_repaint();
        }

        self.poll_loading(&ctx);
        self.caches.tensors.take_finished();
        self.runs.runs_mut().iter_mut().for_each(|run| run.caches.tensors.take_finished());
        self.poll_live();
        self.poll_attention();
        self.poll_pictures();
        let capture_now = self.pending_capture.take();
        let dialog = self.new_run_dialog.ui(&ctx);
        if let Some(request) = dialog.browse {
            self.request_file(&ctx, request);
        }
        if let Some(setup) = dialog.start {
            self.start_live(&ctx, setup);
        }
        self.file_browser_ui(&ctx);

        egui::Panel::top("menu_bar").show(ui, |ui| self.menu_bar_ui(ui));
        self.probe_window_ui(&ctx);
        self.attention_window_ui(&ctx);
        if let Some(sweep) = &mut self.sweep {
            sweep.ui(&ctx, &mut self.commands);
            if !sweep.open {
                self.sweep = None;
            }
        }
        if let Some(document) = &self.document {
            let recorded: Vec<bool> = (0..document.num_steps())
                .map(|step_idx| document.has_step(document.seed_idx, step_idx))
                .collect();
            let commands = egui::Panel::bottom("timeline")
                .show(ui, |ui| timeline_ui(ui, &self.time, &document.manifest().schedule, &recorded))
                .inner;
            for command in commands {
                self.commands.push(AppCommand::Time(command));
            }
            if self.settings.show_side_panel {
                egui::Panel::left("side_panel")
                    .resizable(true)
                    .default_size(300.0)
                    .size_range(200.0..=520.0)
                    .show(ui, |ui| {
                        self.caches.stats.sync(self.generation, ui.ctx());
                        egui::ScrollArea::vertical().show(ui, |ui| {
                            runs_list_ui(ui, document, &self.runs, &mut self.commands);
                            side_panel_ui(ui, document, self.settings.view, &mut self.commands);
                            let clicked =
                                task_panel_ui(ui, document, &mut self.caches.stats, self.time.step_idx());
                            self.commands.go_to_step(clicked);
                        });
                    });
            }
        }
        egui::CentralPanel::default().show(ui, |ui| self.central_ui(ui));
        self.apply_queued();
        // Play may have started this frame: the next frame moves the cursor.
        if self.time.is_playing() {
            ctx.request_repaint();
        }
        drop_hint_ui(&ctx);
        if let Some((target, path)) = capture_now {
            self.capture(&ctx, target, path);
        }
        if self.pending_capture.is_some() {
            ctx.request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings());
    }
}
