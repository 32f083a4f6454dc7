//! A file picker for the window benchmarks: no dialog ever opens (each benchmark includes this
//! file with `#[path]`).

use std::path::PathBuf;

use stepscope::viewer::file_picker::FilePicker;

#[derive(Debug)]
pub struct NoPicker;

impl FilePicker for NoPicker {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        None
    }
}
