//! Asking the user for a path, and what each answer is for: the native dialog when there is
//! one, else the window's own file browser, and in both cases the same continuation.

use std::path::{Path, PathBuf};

use super::app::StepscopeApp;
use super::app_export::{CaptureTarget, PictureKind};
use super::file_browser::{BrowseFor, BrowseOutcome, FileBrowser};

/// The image files a first frame may be read from.
pub(super) const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif"];

/// Why the app asks for a path, with what it needs to go on once it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// A trajectory or probe file to open.
    Open,
    /// A folder of trajectory files to open as a sweep table.
    OpenSweep,
    /// Where to save the live run.
    SaveLiveRun { default_name: String },
    /// Where File > Export writes the shown seed.
    ExportPicture { kind: PictureKind, default_name: String },
    /// Where a PNG of part of the window goes.
    Capture { target: CaptureTarget, default_name: String },
    /// The model folder of the New live run dialog.
    ModelDir,
    /// The prompt embeddings of the New live run dialog.
    PromptEmbeds,
    /// The first frame of an image-to-video run in the New live run dialog.
    FirstFrame,
}

impl FileRequest {
    /// The in-window browser's title, what it may choose, and the suggested name.
    fn browse(&self) -> (&'static str, BrowseFor, &str) {
        const TRAJECTORY: &[&str] = &["safetensors", "json"];
        match self {
            Self::Open => ("Open a trajectory", BrowseFor::OpenFile { extensions: TRAJECTORY }, ""),
            Self::OpenSweep => ("Open a folder of trajectories (a sweep)", BrowseFor::Folder, ""),
            Self::SaveLiveRun { default_name } => {
                ("Save the live run", BrowseFor::SaveFile { extension: "safetensors" }, default_name)
            }
            Self::ExportPicture { kind, default_name } => {
                ("Export a picture", BrowseFor::SaveFile { extension: kind.extension() }, default_name)
            }
            Self::Capture { default_name, .. } => {
                ("Save a picture", BrowseFor::SaveFile { extension: "png" }, default_name)
            }
            Self::ModelDir => ("Pick a Wan model folder", BrowseFor::Folder, ""),
            Self::PromptEmbeds => {
                ("Pick the prompt embeddings", BrowseFor::OpenFile { extensions: &["safetensors"] }, "")
            }
            Self::FirstFrame => {
                ("Pick the first frame (an image)", BrowseFor::OpenFile { extensions: IMAGE_EXTENSIONS }, "")
            }
        }
    }
}

impl StepscopeApp {
    /// Asks for the path `request` needs and goes on with it: through the native dialog, or,
    /// where none can be shown, the in-window browser (the answer then comes in a later frame).
    pub(super) fn request_file(&mut self, ctx: &egui::Context, request: FileRequest) {
        let picker = &mut self.file_picker;
        let picked = match &request {
            FileRequest::Open => picker.pick_trajectory(),
            FileRequest::OpenSweep => picker.pick_sweep_dir(),
            FileRequest::SaveLiveRun { default_name } => picker.save_trajectory(default_name),
            FileRequest::ExportPicture { kind, default_name } => {
                picker.save_picture(default_name, kind.extension())
            }
            FileRequest::Capture { default_name, .. } => picker.save_picture(default_name, "png"),
            FileRequest::ModelDir => picker.pick_model_dir(),
            FileRequest::PromptEmbeds => picker.pick_tensor_file(),
            FileRequest::FirstFrame => picker.pick_image(),
        };
        match picked {
            Some(path) => self.file_chosen(ctx, request, path),
            None if picker.native_dialogs_unavailable() => {
                let (title, browse_for, name) = request.browse();
                let browser = FileBrowser::new(title, browse_for, &self.browse_start_dir(), name);
                self.file_browser = Some((request, browser));
            }
            // The user cancelled.
            None => {}
        }
    }

    /// Where the in-window browser starts: the open file's folder, else the working directory.
    fn browse_start_dir(&self) -> PathBuf {
        self.document
            .as_ref()
            .and_then(|document| document.path())
            .and_then(Path::parent)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| std::env::current_dir().unwrap_or_default(), Path::to_owned)
    }

    /// The in-window browser, while one is open.
    pub(super) fn file_browser_ui(&mut self, ctx: &egui::Context) {
        let Some((_, browser)) = &mut self.file_browser else { return };
        match browser.ui(ctx) {
            Some(BrowseOutcome::Chosen(path)) => {
                if let Some((request, _)) = self.file_browser.take() {
                    self.file_chosen(ctx, request, path);
                }
            }
            Some(BrowseOutcome::Cancelled) => self.file_browser = None,
            None => {}
        }
    }

    /// Goes on with what `request` was for, now that the user chose `path`.
    fn file_chosen(&mut self, ctx: &egui::Context, request: FileRequest, path: PathBuf) {
        match request {
            FileRequest::Open | FileRequest::OpenSweep => self.open(&path),
            FileRequest::SaveLiveRun { .. } => self.save_live_run_to(ctx, &path),
            FileRequest::ExportPicture { kind, .. } => self.export_picture_to(ctx, kind, path),
            FileRequest::Capture { target, .. } => self.pending_capture = Some((target, path)),
            FileRequest::ModelDir => self.new_run_dialog.setup.model_dir = path,
            FileRequest::PromptEmbeds => self.new_run_dialog.setup.prompt_embeds = path,
            FileRequest::FirstFrame => self.new_run_dialog.setup.image = path,
        }
    }

    /// Whether the in-window file browser is open.
    #[must_use]
    pub fn is_browsing_files(&self) -> bool {
        self.file_browser.is_some()
    }
}
