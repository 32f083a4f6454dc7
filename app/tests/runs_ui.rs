//! Several runs in one window, headless (`egui_kittest` on wgpu): views as tiles the user
//! rearranges, files opened side by side in the runs list and compared with their steps aligned
//! by sigma, and a folder of runs (a sweep) as a sortable table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use egui_kittest::kittest::Queryable;
use stepscope::viewer::{Document, StepscopeApp, Sweep};
use stepscope_engine::trajectory::TrajectoryReader;

mod support;

use support::{DroppedPath, FixedPicker, exporter_fixture, harness_on_sample, harness_with, sample, settle};

/// The sample copied to `dir` as `name` (a second file of the same run).
fn sample_copy(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(sample(), &copy).expect("copy the sample");
    copy
}

#[test]
fn a_second_file_joins_the_runs_list_and_a_click_shows_the_first_again() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut harness = harness_on_sample();
    // A single run shows no list.
    assert!(harness.query_by_label("Runs").is_none());
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(sample_copy(dir.path(), "other.safetensors"))));
    settle(&mut harness);
    harness.get_by_label("Runs");
    let shown =
        |harness: &egui_kittest::Harness<'_, StepscopeApp>| harness.state().document().map(Document::title);
    assert_eq!(shown(&harness).as_deref(), Some("other.safetensors"));
    assert_eq!(harness.state().open_runs().len(), 1, "the sample stays open");
    // Leave the new run at step 3, show the sample (kept at step 0), then come back.
    for _ in 0..3 {
        harness.key_press(egui::Key::ArrowRight);
    }
    settle(&mut harness);
    harness.get_by_label("sample.safetensors").click();
    settle(&mut harness);
    assert_eq!(shown(&harness).as_deref(), Some("sample.safetensors"));
    assert_eq!(harness.state().time().step_idx(), 0);
    harness.get_by_label("other.safetensors").click();
    settle(&mut harness);
    assert_eq!(harness.state().time().step_idx(), 3, "a run comes back at its step");
    // Close the shown run: the other one is shown.
    harness.get_all_by_label("x").next().expect("a close button").click();
    settle(&mut harness);
    assert_eq!(shown(&harness).as_deref(), Some("sample.safetensors"));
    assert!(harness.state().open_runs().is_empty());
}

#[test]
fn compare_runs_aligns_steps_by_sigma_and_names_the_mismatch() {
    // The sample: 12 UniPC steps, 4 channels; the exporter's fixture: 4 steps, 16 channels.
    let mut harness = harness_with(Some(&exporter_fixture()), FixedPicker::default());
    harness.state_mut().open(&sample());
    settle(&mut harness);
    harness.get_by_label("Compare runs").click();
    settle(&mut harness);
    // At step 0 both start from sigma ~1: no mismatch worth a word.
    harness.get_by_label_contains("(shown)\nstep 0");
    harness.get_by_label_contains("tiny_wan_t2v.safetensors\nseed 0, step 0");
    assert!(harness.query_by_label_contains("Δσ").is_none());
    harness.get_by_label_contains("differs from the shown run's");
    // At the sample's step 5 the fixture's nearest step has another sigma, written next to it
    // (at step 6 both are at sigma 0.75 exactly: 3 * 0.5 / (1 + 2 * 0.5)).
    for _ in 0..5 {
        harness.key_press(egui::Key::ArrowRight);
    }
    settle(&mut harness);
    let fixture = TrajectoryReader::open(exporter_fixture()).expect("the fixture opens");
    let sample_reader = TrajectoryReader::open(sample()).expect("the sample opens");
    let sigma = sample_reader.manifest().schedule.sigmas[5];
    let sigmas = &fixture.manifest().schedule.sigmas[..4];
    let (nearest, found) = sigmas
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - sigma).abs().total_cmp(&(b.1 - sigma).abs()))
        .expect("four steps");
    harness.get_by_label_contains(&format!("seed 0, step {nearest}, σ {found:.4}"));
    harness.get_by_label(&format!("Δσ {:+.4}", found - sigma));
    harness.get_by_label("Noise schedules (σ at the start of each step)");
}

#[test]
fn a_view_dragged_beside_another_shows_both_and_the_layout_persists() {
    let mut harness = harness_on_sample();
    let tab = harness.get_by_label("Layers").rect();
    let centre = harness.get_by_label("Frames").rect();
    // Drag the Layers tab to the right edge of the centre, below the tab bar.
    let target = egui::pos2(950.0, centre.bottom() + 200.0);
    let steps = [tab.center(), tab.center() + egui::vec2(8.0, 8.0), target, target];
    harness.event(egui::Event::PointerButton {
        pos: steps[0],
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    for pos in steps {
        harness.event(egui::Event::PointerMoved(pos));
        // A few frames each (the preview of the drop moves smoothly), not until idle: the
        // views' background work may wake the window meanwhile.
        harness.run_steps(3);
    }
    harness.event(egui::Event::PointerButton {
        pos: target,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    settle(&mut harness);
    // Both views draw at once: the frames and the layer picker.
    harness.get_by_label("frame 0");
    harness.get_by_label_contains("x0 prediction");
    let settings = harness.state().settings();
    let layout = settings.layout.expect("the layout is saved");
    assert!(layout.contains("Horizontal") || layout.contains("Vertical"), "split: {layout}");
}

/// Records the built-in maze model on instance `instance` into `path` with `solve`.
fn solve_into(path: &Path, instance: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepscope"))
        .args(["solve", "--cells", "4", "--instance", instance, "--seeds", "2", "--steps", "4"])
        .args(["--capture", "", "--quiet", "-o"])
        .arg(path)
        .output()
        .expect("run stepscope solve");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_folder_opens_as_a_sortable_table_of_runs_and_a_click_opens_one() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    solve_into(&dir.path().join("maze_a.safetensors"), "3");
    solve_into(&dir.path().join("maze_b.safetensors"), "5");
    sample_copy(dir.path(), "prompted.safetensors");
    std::fs::write(dir.path().join("broken.safetensors"), b"not a trajectory").expect("write");

    let mut harness = harness_with(None, FixedPicker::default());
    harness.input_mut().dropped_files.push(Arc::new(DroppedPath(dir.path().to_owned())));
    // `step`, not `run`: the spinner repaints while the thread reads.
    harness.step();
    let started = std::time::Instant::now();
    while !harness.state().sweep().is_some_and(Sweep::is_finished) {
        assert!(started.elapsed().as_secs() < 120, "the sweep did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
        harness.step();
    }
    settle(&mut harness);
    harness.get_by_label("4 of 4 runs read");
    harness.get_by_label_contains("broken.safetensors: ");
    harness.get_by_label("maze (instance 3)");
    harness.get_by_label("maze (instance 5)");
    // Each task run's cells are the engine's own scores of the file.
    let sweep = harness.state().sweep().expect("a sweep");
    let maze_a = sweep.rows.iter().find(|row| row.name == "maze_a.safetensors").expect("maze_a");
    let score = maze_a.final_score.expect("a task run has a final score");
    assert!((0.0..=1.0).contains(&score));
    harness.get_all_by_label(&format!("{score:.3}")).next().expect("the score cell");
    harness
        .get_all_by_label(&format!("{} / 2", maze_a.solved_seeds.unwrap_or(0)))
        .next()
        .expect("solved cell");
    let prompted = sweep.rows.iter().find(|row| row.name == "prompted.safetensors").expect("the prompt run");
    assert_eq!(prompted.final_score, None, "no task, no score");
    // Sorting by seeds then steps: the prompt run (12 steps) goes last ascending, first descending.
    harness.get_by_label("steps").click();
    settle(&mut harness);
    let names = |harness: &egui_kittest::Harness<'_, StepscopeApp>| -> Vec<String> {
        harness
            .state()
            .sweep()
            .map(|sweep| sweep.rows.iter().map(|row| row.name.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&harness).last().map(String::as_str), Some("prompted.safetensors"));
    harness.get_by_label("steps ⏶").click();
    settle(&mut harness);
    assert_eq!(names(&harness).first().map(String::as_str), Some("prompted.safetensors"));
    // A click on a run opens it; its task panel's scores come from the analysis thread.
    harness.get_by_label("maze_b.safetensors").click();
    settle(&mut harness);
    let shown = harness.state().document().and_then(|document| document.path().map(Path::to_owned));
    assert_eq!(shown, Some(dir.path().join("maze_b.safetensors")));
    harness.get_by_label_contains("Commits to a solution");
}
