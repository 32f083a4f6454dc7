//! What the window tests share: a file picker that answers from a list, a dropped file, the
//! committed fixtures, and a headless window (`egui_kittest` on wgpu) on one of them. Each test
//! binary uses part of it.
#![allow(dead_code, reason = "each test binary that includes this module uses part of it")]

use std::path::{Path, PathBuf};

use egui::Key;
use egui_kittest::Harness;
use stepscope::viewer::StepscopeApp;
use stepscope::viewer::file_picker::FilePicker;

/// A file picker that answers with a file given in advance, once.
#[derive(Debug, Default)]
pub struct FixedPicker(pub Option<PathBuf>);

impl FilePicker for FixedPicker {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        self.0.take()
    }

    fn save_picture(&mut self, _default_name: &str, _extension: &str) -> Option<PathBuf> {
        self.0.take()
    }
}

/// A file dropped on the window in a test.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|err| err.to_string())
    }
}

pub fn sample() -> PathBuf {
    stepscope::sample_trajectory_path()
}

/// The committed export of a tiny random diffusers pipeline (decoded video at step 3, captures
/// with attention at steps 0 and 3).
pub fn exporter_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/exporter/tiny_wan_t2v.safetensors")
}

pub fn harness_with(path: Option<&Path>, picker: FixedPicker) -> Harness<'static, StepscopeApp> {
    let path = path.map(Path::to_owned);
    let mut harness = Harness::builder()
        .with_size([960.0, 600.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, path.as_deref(), Box::new(picker)));
    harness.run();
    harness
}

pub fn harness_on_sample() -> Harness<'static, StepscopeApp> {
    harness_with(Some(&sample()), FixedPicker::default())
}

pub fn press(harness: &mut Harness<'_, StepscopeApp>, key: Key) {
    harness.key_press(key);
    harness.run();
}

/// Runs the window until the work it handed to background threads (analyses, frames read
/// from a file) is drawn and nothing asks for another frame.
pub fn settle(harness: &mut Harness<'_, StepscopeApp>) {
    for _ in 0..200 {
        let settled = harness.try_run().is_ok();
        if settled && !harness.state().is_computing_analyses() && harness.state().frames_loading() == 0 {
            return;
        }
        harness.state_mut().wait_for_analyses(std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the window did not settle");
}

/// How long a test waits for the engine thread before failing.
pub const ENGINE_WAIT: std::time::Duration = std::time::Duration::from_mins(1);

/// Steps the UI (letting the engine thread work between frames) until `done` holds.
pub fn run_until(
    harness: &mut Harness<'_, StepscopeApp>,
    what: &str,
    done: impl Fn(&Harness<'_, StepscopeApp>) -> bool,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < ENGINE_WAIT {
        harness.step();
        if done(harness) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("waited {ENGINE_WAIT:?} for {what}");
}
