//! The seam between the viewer and the operating system's file dialog, so that tests never open
//! one.

use std::path::PathBuf;

/// Asks the user for a trajectory file to open.
pub trait FilePicker: std::fmt::Debug {
    /// The chosen file, or `None` when the user cancelled.
    fn pick_trajectory(&mut self) -> Option<PathBuf>;
}

/// The native dialog, through `rfd` (blocking: the window waits while the dialog is open).
#[derive(Debug, Default)]
pub struct NativeFilePicker;

impl FilePicker for NativeFilePicker {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        rfd::FileDialog::new()
            .set_title("Open a trajectory")
            .add_filter("Stepscope trajectory", &["safetensors"])
            .pick_file()
    }
}
