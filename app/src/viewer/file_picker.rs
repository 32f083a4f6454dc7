//! The seam between the viewer and the operating system's file dialogs, so that tests never
//! open one.

use std::path::PathBuf;

/// Asks the user for files and folders. Every method answers `None` when the user cancelled;
/// the defaults answer `None` at once, so a test picker implements only what it needs.
pub trait FilePicker: std::fmt::Debug {
    /// A trajectory file to open.
    fn pick_trajectory(&mut self) -> Option<PathBuf>;

    /// A model folder (diffusers layout).
    fn pick_model_dir(&mut self) -> Option<PathBuf> {
        None
    }

    /// A safetensors file of inputs (prompt embeddings).
    fn pick_tensor_file(&mut self) -> Option<PathBuf> {
        None
    }

    /// Where to save a trajectory, suggesting `default_name`.
    fn save_trajectory(&mut self, default_name: &str) -> Option<PathBuf> {
        let _ = default_name;
        None
    }

    /// Where to save a picture with the file extension `extension` (`png`, `gif`), suggesting
    /// `default_name`.
    fn save_picture(&mut self, default_name: &str, extension: &str) -> Option<PathBuf> {
        let _ = (default_name, extension);
        None
    }
}

/// The native dialogs, through `rfd` (blocking: the window waits while a dialog is open).
#[derive(Debug, Default)]
pub struct NativeFilePicker;

impl FilePicker for NativeFilePicker {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        rfd::FileDialog::new()
            .set_title("Open a trajectory")
            .add_filter("Stepscope trajectory", &["safetensors"])
            .pick_file()
    }

    fn pick_model_dir(&mut self) -> Option<PathBuf> {
        rfd::FileDialog::new().set_title("Pick a Wan model folder (config.json + weights)").pick_folder()
    }

    fn pick_tensor_file(&mut self) -> Option<PathBuf> {
        rfd::FileDialog::new()
            .set_title("Pick the prompt embeddings")
            .add_filter("safetensors", &["safetensors"])
            .pick_file()
    }

    fn save_trajectory(&mut self, default_name: &str) -> Option<PathBuf> {
        rfd::FileDialog::new()
            .set_title("Save the live run as a trajectory")
            .add_filter("Stepscope trajectory", &["safetensors"])
            .set_file_name(default_name)
            .save_file()
    }

    fn save_picture(&mut self, default_name: &str, extension: &str) -> Option<PathBuf> {
        rfd::FileDialog::new()
            .set_title("Export a picture")
            .add_filter(extension.to_uppercase(), &[extension])
            .set_file_name(default_name)
            .save_file()
    }
}
