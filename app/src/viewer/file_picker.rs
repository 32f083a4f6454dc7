//! The seam between the viewer and the operating system's file dialogs, so that tests never
//! open one. Where no native dialog can be shown (no xdg-desktop-portal and no zenity, as on
//! remote X, minimal window managers or Xvfb), the picker says so and the window offers its own
//! file browser ([`super::file_browser`]) instead of doing nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A dialog that returns in less than this showed nothing: nobody closes a dialog that fast.
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(250);

/// Asks the user for files and folders. Every method answers `None` when the user cancelled;
/// the defaults answer `None` at once, so a test picker implements only what it needs.
pub trait FilePicker: std::fmt::Debug {
    /// A trajectory file to open.
    fn pick_trajectory(&mut self) -> Option<PathBuf>;

    /// A model folder (diffusers layout).
    fn pick_model_dir(&mut self) -> Option<PathBuf> {
        None
    }

    /// A folder of trajectory files (a sweep) to open as a table of runs.
    fn pick_sweep_dir(&mut self) -> Option<PathBuf> {
        None
    }

    /// A safetensors file of inputs (prompt embeddings).
    fn pick_tensor_file(&mut self) -> Option<PathBuf> {
        None
    }

    /// An image (the first frame of an image-to-video run).
    fn pick_image(&mut self) -> Option<PathBuf> {
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

    /// Whether the native dialogs cannot be shown, so that a `None` above was no answer rather
    /// than the user cancelling: the window then shows its own file browser.
    fn native_dialogs_unavailable(&self) -> bool {
        false
    }
}

/// The native dialogs, through `rfd` (blocking: the window waits while a dialog is open). A
/// dialog that answers at once showed nothing (rfd found no portal and no zenity): from then on
/// this picker reports the native dialogs unavailable and asks nothing more of them.
#[derive(Debug, Default)]
pub struct NativeFilePicker {
    unavailable: bool,
}

impl NativeFilePicker {
    fn run(&mut self, dialog: impl FnOnce() -> Option<PathBuf>) -> Option<PathBuf> {
        if self.unavailable {
            return None;
        }
        let started = Instant::now();
        let picked = dialog();
        if picked.is_none() && started.elapsed() < NO_DIALOG_WITHIN {
            self.unavailable = true;
        }
        picked
    }
}

impl FilePicker for NativeFilePicker {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new()
                .set_title("Open a trajectory")
                .add_filter("Stepscope trajectory", &["safetensors"])
                .pick_file()
        })
    }

    fn pick_model_dir(&mut self) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new().set_title("Pick a Wan model folder (config.json + weights)").pick_folder()
        })
    }

    fn pick_sweep_dir(&mut self) -> Option<PathBuf> {
        self.run(|| rfd::FileDialog::new().set_title("Open a folder of trajectories (a sweep)").pick_folder())
    }

    fn pick_tensor_file(&mut self) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new()
                .set_title("Pick the prompt embeddings")
                .add_filter("safetensors", &["safetensors"])
                .pick_file()
        })
    }

    fn pick_image(&mut self) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new()
                .set_title("Pick the first frame")
                .add_filter("image", super::app_files::IMAGE_EXTENSIONS)
                .pick_file()
        })
    }

    fn save_trajectory(&mut self, default_name: &str) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new()
                .set_title("Save the live run as a trajectory")
                .add_filter("Stepscope trajectory", &["safetensors"])
                .set_file_name(default_name)
                .save_file()
        })
    }

    fn save_picture(&mut self, default_name: &str, extension: &str) -> Option<PathBuf> {
        self.run(|| {
            rfd::FileDialog::new()
                .set_title("Export a picture")
                .add_filter(extension.to_uppercase(), &[extension])
                .set_file_name(default_name)
                .save_file()
        })
    }

    fn native_dialogs_unavailable(&self) -> bool {
        self.unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dialog_that_answers_at_once_marks_the_native_dialogs_unavailable() {
        let mut picker = NativeFilePicker::default();
        assert_eq!(picker.run(|| Some(PathBuf::from("a"))), Some(PathBuf::from("a")));
        assert!(!picker.native_dialogs_unavailable(), "a pick is an answer");
        assert_eq!(picker.run(|| None), None);
        assert!(picker.native_dialogs_unavailable(), "no dialog showed");
        assert_eq!(picker.run(|| panic!("not asked again")), None);
    }

    #[test]
    fn a_cancel_after_a_while_is_the_users() {
        let mut picker = NativeFilePicker::default();
        let cancelled = picker.run(|| {
            std::thread::sleep(NO_DIALOG_WITHIN + Duration::from_millis(20));
            None
        });
        assert_eq!(cancelled, None);
        assert!(!picker.native_dialogs_unavailable());
    }
}
