//! The window, driven headless through `egui_kittest` on the wgpu renderer (Mesa's lavapipe on a
//! machine without a GPU): open the sample, scrub with keys, switch views and seeds, open broken
//! and dropped files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use stepscope::viewer::file_picker::FilePicker;
use stepscope::viewer::{StepView, StepscopeApp};

mod support;

use support::{
    DroppedPath, FixedPicker, exporter_fixture, harness_on_sample, harness_with, press, sample, settle,
};

#[test]
fn keys_move_the_step_cursor() {
    let mut harness = harness_on_sample();
    harness.get_by_label("Step 0 / 11");
    harness.get_by_label("frame 2");

    press(&mut harness, Key::ArrowRight);
    harness.get_by_label("Step 1 / 11");
    press(&mut harness, Key::End);
    harness.get_by_label("Step 11 / 11");
    press(&mut harness, Key::ArrowRight);
    harness.get_by_label("Step 11 / 11");
    press(&mut harness, Key::ArrowLeft);
    harness.get_by_label("Step 10 / 11");
    press(&mut harness, Key::Home);
    harness.get_by_label("Step 0 / 11");
}

#[test]
fn transport_buttons_move_the_step_cursor() {
    let mut harness = harness_on_sample();
    harness.get_by_label("⏭").click();
    harness.run();
    harness.get_by_label("Step 11 / 11");
    harness.get_by_label("⏴").click();
    harness.run();
    harness.get_by_label("Step 10 / 11");
}

#[test]
fn space_plays_at_the_chosen_fps_and_pauses() {
    let mut harness = harness_on_sample();
    harness.key_press(Key::Space);
    // Playing asks for a frame after every frame, so the harness never settles: step it by hand.
    // The harness advances 0.25 s a frame: three frames at 8 fps move 6 of the 12 steps (more
    // would wrap around the looping run and could land on step 0 again).
    harness.run_steps(3);
    assert!(harness.state().time().is_playing());
    assert!(harness.state().time().step_idx() > 0, "play moves the cursor");
    harness.get_by_label("⏸ Pause");

    harness.key_press(Key::Space);
    harness.run();
    assert!(!harness.state().time().is_playing());
    harness.get_by_label("▶ Play");
}

#[test]
fn the_view_picker_switches_the_tensor_shown() {
    let mut harness = harness_on_sample();
    assert_eq!(harness.state().settings().view, StepView::X0);
    harness.get_by_label("x_t").click();
    harness.run();
    assert_eq!(harness.state().settings().view, StepView::Latents);
    harness.get_by_label("velocity").click();
    harness.run();
    assert_eq!(harness.state().settings().view, StepView::Velocity);
    harness.get_by_label("frame 0");
    assert_eq!(harness.state().cached_frame_sets(), 3, "one upload per (seed, step, view)");
}

#[test]
fn textures_are_uploaded_once_per_seed_step_and_view() {
    let mut harness = harness_on_sample();
    for _ in 0..3 {
        press(&mut harness, Key::ArrowRight);
        press(&mut harness, Key::ArrowLeft);
    }
    assert_eq!(harness.state().cached_frame_sets(), 2);
    harness.get_by_label("■ seed 1 (RNG 2)").click();
    harness.run();
    assert_eq!(harness.state().cached_frame_sets(), 3);
}

#[test]
fn a_broken_file_shows_its_error_and_the_app_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.safetensors");
    std::fs::write(&broken, b"this is not a safetensors file").unwrap();

    let mut harness = harness_with(Some(&sample()), FixedPicker(Some(broken)));
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label_contains("Open…").click();
    harness.run();

    harness.get_by_label_contains("Could not open");
    harness.get_by_label_contains("broken.safetensors: the header length says");
    // The sample stays open and usable.
    press(&mut harness, Key::End);
    harness.get_by_label("Step 11 / 11");
    harness.get_by_label("Dismiss").click();
    harness.run();
    assert!(harness.query_by_label_contains("Could not open").is_none());
}

#[test]
fn a_missing_file_on_start_shows_its_error() {
    let harness = harness_with(Some(Path::new("/nonexistent/run.safetensors")), FixedPicker::default());
    harness.get_by_label_contains("Could not open /nonexistent/run.safetensors");
    assert!(harness.query_by_label_contains("Step 0").is_none());
}

#[test]
fn a_dropped_file_opens_and_is_remembered() {
    let mut harness = harness_with(None, FixedPicker::default());
    harness.get_by_label_contains("drop a .safetensors file here");
    harness.input_mut().dropped_files.push(Arc::new(DroppedPath(sample())));
    harness.run();
    harness.get_by_label("Step 0 / 11");
    harness.get_by_label("sample.safetensors");
    assert_eq!(harness.state().settings().recent_files, [sample()]);
}

#[test]
fn snapshot_of_the_sample_at_its_last_step() {
    let mut harness = harness_on_sample();
    press(&mut harness, Key::End);
    harness.snapshot("sample_last_step");
}

#[test]
fn dragging_along_the_step_strip_scrubs() {
    let mut harness = harness_on_sample();
    let strip = harness.get_by_label("Step strip").rect();
    let at = |fraction: f32| egui::pos2(strip.left() + strip.width() * fraction, strip.center().y);
    harness.drag_at(at(0.02));
    harness.run();
    harness.hover_at(at(0.5));
    harness.run();
    // 12 steps: the middle of the strip is step 6.
    harness.get_by_label("Step 6 / 11");
    harness.hover_at(at(0.97));
    harness.run();
    harness.drop_at(at(0.97));
    harness.run();
    harness.get_by_label("Step 11 / 11");
}

#[test]
fn the_layers_tab_shows_every_captured_layer_and_a_step_by_frame_heatmap() {
    let mut harness = harness_on_sample();
    harness.set_size(egui::vec2(1100.0, 760.0));
    press(&mut harness, Key::End);
    harness.get_by_label("Layers").click();
    harness.run();
    harness.get_by_label("layer 0");
    harness.get_by_label("layer 1");
    harness.get_by_label("token norm").click();
    harness.run();
    harness.get_by_label("token norm, layer 1").click();
    // The map is computed on the analysis thread.
    settle(&mut harness);
    harness.get_by_label("rows: steps 0-11, columns: frames");
    harness.snapshot("sample_layers_token_norm");
}

#[test]
fn the_seeds_tab_shows_seeds_side_by_side_their_difference_distance_and_diversity() {
    let mut harness = harness_on_sample();
    harness.set_size(egui::vec2(1100.0, 760.0));
    press(&mut harness, Key::End);
    harness.get_by_label("Compare seeds").click();
    // The distances and the diversity are computed on the analysis thread.
    settle(&mut harness);
    // Each seed: a checkbox, a row of frames and an entry in each plot's legend, in its colour.
    harness.get_by_label("seed 1");
    assert_eq!(harness.get_all_by_label("■ seed 1").count(), 3);
    harness.get_by_label("|0 - 1|");
    harness.get_by_label_contains("Distance to seed 0");
    harness.get_by_label("Diversity over the steps");
    harness.snapshot("sample_seeds");
}

/// A synthetic probe result (named as such in its record): 12 steps x 3 layers, accuracy rising
/// with the step and the layer.
fn synthetic_probe_file(dir: &Path) -> PathBuf {
    use stepscope_engine::analysis::{PROBE_VERSION, ProbeRecord, ProbeResult, write_probe_file};
    let (steps, layers) = (12, 3);
    let values: Vec<f64> = (0..steps)
        .flat_map(|step| (0..layers).map(move |layer| 0.5 + 0.04 * step as f64 + 0.01 * layer as f64))
        .collect();
    let result = ProbeResult {
        steps,
        layers,
        accuracy: values.clone(),
        balanced_accuracy: values,
        chance: 0.7,
        train_tokens: 100,
        test_tokens: 50,
        layout_balanced_accuracy: Some(0.6),
        x0_balanced_accuracy: (0..steps).map(|step| 0.55 + 0.03 * step as f64).collect(),
    };
    let record = ProbeRecord {
        version: PROBE_VERSION,
        task: "maze".to_owned(),
        size: 5,
        frames: 5,
        frame: 4,
        train_seeds: [0, 4],
        test_seeds: [4, 6],
        split: String::new(),
        train_instances: Vec::new(),
        test_instances: Vec::new(),
        scheduler: "unipc".to_owned(),
        sampler_steps: steps,
        shift: 3.0,
        ridge: 1e-3,
        model: "synthetic test values, no model".to_owned(),
        steps,
        layers,
        chance: 0.7,
        train_tokens: 100,
        test_tokens: 50,
    };
    let path = dir.join("probe.safetensors");
    write_probe_file(&path, &record, &result).expect("writing the synthetic probe file");
    path
}

#[test]
fn a_dropped_probe_result_opens_in_its_window_next_to_the_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let probe = synthetic_probe_file(dir.path());
    let mut harness = harness_on_sample();
    harness.input_mut().dropped_files.push(Arc::new(DroppedPath(probe.clone())));
    harness.run();
    assert!(harness.state().has_probe());
    harness.get_by_label("Linear probes: maze 5x5");
    harness.get_by_label_contains("fitted on seeds 0..4 (100 tokens), tested on 4..6");
    harness.get_by_label("balanced accuracy").click();
    harness.run();
    // The synthetic baselines: layout 0.6, the x0_hat readout from 0.55 at step 0 to 0.88 at 11.
    harness.get_by_label_contains(
        "layout only 0.600; the step's own x0_hat, read linearly, 0.550 (step 0) to 0.880 (step 11)",
    );
    harness.get_by_label("over the stronger baseline").click();
    harness.run();
    // The trajectory stays open underneath, and the file is remembered.
    harness.get_by_label("Step 0 / 11");
    assert_eq!(harness.state().settings().recent_files[0], probe);
}

#[test]
fn file_export_writes_the_shown_seed_as_a_contact_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = dir.path().join("sheet.png");
    let mut harness = harness_with(Some(&sample()), FixedPicker(Some(sheet.clone())));
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label("Export contact sheet…").click();
    run_until_label(&mut harness, &format!("Exported {}", sheet.display()));
    // Written and reported: the "Writing the picture…" spinner is gone, so the window settles.
    harness.run();
    // The sample: 12 steps of 3 frames of 8 x 8 latent pixels, 8 output pixels each, 2 apart,
    // as a figure: the sheet with its title and labels around it, on white.
    let picture = image::open(&sheet).unwrap().to_rgba8();
    let (sheet_w, sheet_h) = (3 * 64 + 2 * 2, 12 * 64 + 11 * 2);
    assert!(picture.width() > sheet_w && picture.height() > sheet_h, "{:?}", picture.dimensions());
    assert_eq!(*picture.get_pixel(0, picture.height() - 1), image::Rgba([255, 255, 255, 255]), "paper");
}

/// Runs frames until `label` shows (a worker thread is writing a file, a spinner turns
/// meanwhile), for at most ~10 s.
fn run_until_label(harness: &mut Harness<'_, StepscopeApp>, label: &str) {
    for _ in 0..200 {
        harness.step();
        if harness.query_by_label(label).is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{label:?} never showed");
}

/// A file picker that answers each save with the next of its paths.
#[derive(Debug)]
struct SaveAnswers(Vec<PathBuf>);

impl FilePicker for SaveAnswers {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        None
    }

    fn save_picture(&mut self, _default_name: &str, _extension: &str) -> Option<PathBuf> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
}

#[test]
fn the_view_and_the_window_save_as_png_pictures_of_what_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (window_png, view_png) = (dir.path().join("window.png"), dir.path().join("view.png"));
    let picker = SaveAnswers(vec![window_png.clone(), view_png.clone()]);
    let path = sample();
    let mut harness = Harness::builder()
        .with_size([960.0, 600.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, Some(&path), Box::new(picker)));
    harness.run();
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label("Save window as PNG…").click();
    run_until_label(&mut harness, &format!("Saved {}", window_png.display()));
    let window = image::open(&window_png).unwrap().to_rgba8();
    let ppp = harness.ctx.pixels_per_point();
    assert_eq!(window.dimensions(), ((960.0 * ppp) as u32, (600.0 * ppp) as u32));

    // The view: Ctrl+Shift+S, cut from the window below the tabs, beside the side panel.
    harness.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, Key::S);
    run_until_label(&mut harness, &format!("Saved {}", view_png.display()));
    let view = image::open(&view_png).unwrap().to_rgba8();
    let (width, height) = view.dimensions();
    assert!(
        width > 200 && width < window.width() && height > 200 && height < window.height(),
        "{width} x {height}"
    );
    // It shows the frames in colour, not an empty panel.
    let colours: std::collections::HashSet<[u8; 4]> = view.pixels().map(|pixel| pixel.0).collect();
    assert!(colours.len() > 50, "only {} colours", colours.len());
}

#[test]
fn an_exported_diffusers_run_shows_its_decoded_video_at_the_steps_it_stores() {
    // Written by the Python exporter from a tiny random diffusers pipeline: seed 0's `x0` was
    // decoded by its VAE at step 3 only, to 9 frames of 32 x 48 RGB pixels.
    let fixture = exporter_fixture();
    let mut harness = harness_with(Some(&fixture), FixedPicker::default());
    harness.get_by_label("decoded video").click();
    harness.run();
    assert_eq!(harness.state().settings().view, StepView::Video);
    harness.get_by_label("seed 0 has no decoded video at step 0; it has one at step 3");
    press(&mut harness, Key::End);
    harness.get_by_label_contains("9 frames of 32 x 48, 3 channels");
    harness.get_by_label("frame 8");
}

/// A copy of the exporter fixture with `s0/k0/x0`'s first value NaN and its second +infinity,
/// patched in place (format 1 files carry no checksums).
fn fixture_with_non_finite_values(dir: &Path) -> PathBuf {
    let fixture = exporter_fixture();
    let mut bytes = std::fs::read(fixture).expect("reading the exporter fixture");
    let header_len: [u8; 8] = bytes[..8].try_into().expect("an 8-byte header length");
    let header_len = usize::try_from(u64::from_le_bytes(header_len)).expect("a header length that fits");
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("a JSON header");
    assert_eq!(header["s0/k0/x0"]["dtype"], "F32");
    let offset = header["s0/k0/x0"]["data_offsets"][0].as_u64().expect("data offsets");
    let start = usize::try_from(offset).expect("an offset that fits") + 8 + header_len;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    bytes[start + 4..start + 8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let path = dir.join("non_finite.safetensors");
    std::fs::write(&path, bytes).expect("writing the patched copy");
    path
}

#[test]
fn nan_and_infinite_values_are_counted_and_flagged_in_the_frames_view() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_with_non_finite_values(dir.path());
    let harness = harness_with(Some(&path), FixedPicker::default());
    assert_eq!(harness.state().settings().view, StepView::X0);
    harness.get_by_label("⚠ This step holds 1 NaN (drawn magenta) and 1 infinite values (drawn cyan).");
    // The next step is clean: no warning.
    let mut harness = harness;
    press(&mut harness, Key::ArrowRight);
    assert!(harness.query_by_label_contains("This step holds").is_none());
}

#[test]
fn the_steps_by_frames_grid_fits_the_run_and_a_click_moves_the_cursor() {
    let mut harness = harness_on_sample();
    harness.get_by_label("Steps x frames").click();
    harness.run();
    // The sample: 12 steps x 3 frames for seed 0, labelled with step and sigma; the automatic
    // step stride (2 in the 960 x 600 window) shows every other step so that all rows fit.
    harness.get_by_label("step 2\nσ 0.938");
    assert!(harness.query_by_label("step 3\nσ 0.900").is_none(), "every other step");
    harness.get_by_label("step 0, frame 2");
    harness.get_by_label("step 2, frame 1").click();
    harness.run();
    assert_eq!(harness.state().time().step_idx(), 2);
    // Seeds x steps for one frame: a click picks the seed and the step.
    harness.get_by_label("Seeds x steps (one frame)").click();
    harness.run();
    harness.get_by_label("seed 1, step 4").click();
    harness.run();
    assert_eq!(harness.state().time().step_idx(), 4);
    assert_eq!(harness.state().document().map(|document| document.seed_idx), Some(1));
    assert_eq!(harness.state().settings().central_tab, "chain");
}

/// A picker on a machine with no native file dialog (no xdg-desktop-portal, no zenity): every
/// question goes unanswered, and it says so.
#[derive(Debug, Default)]
struct NoNativeDialogs;

impl FilePicker for NoNativeDialogs {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        None
    }

    fn native_dialogs_unavailable(&self) -> bool {
        true
    }
}

#[test]
fn without_native_dialogs_file_open_uses_the_in_window_browser() {
    let mut harness = Harness::builder()
        .with_size([960.0, 600.0])
        .wgpu()
        .build_eframe(|cc| StepscopeApp::new(cc, None, Box::new(NoNativeDialogs)));
    harness.run();
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label_contains("Open…").click();
    harness.run();
    assert!(harness.state().is_browsing_files());
    harness.get_by_label_contains("No system file dialog answered");
    // Tests run in `app/`: up to the repository, into assets, pick the sample.
    harness.get_by_label("⬆ Up").click();
    harness.run();
    harness.get_by_label("📁 assets").click();
    harness.run();
    harness.get_by_label("sample.safetensors").click();
    harness.run();
    harness.get_by_label("Open").click();
    harness.run();
    assert!(!harness.state().is_browsing_files());
    let opened = harness.state().document().and_then(|document| document.path().map(Path::to_owned));
    assert_eq!(opened.map(|path| path.canonicalize().unwrap()), Some(sample().canonicalize().unwrap()));
}

#[test]
fn play_video_walks_the_frames_with_the_latent_frame_beside_the_decoded_one() {
    // The exporter fixture: 3 latent frames, decoded to 9 at step 3 (Wan's 4x in time).
    let fixture = exporter_fixture();
    let mut harness = harness_with(Some(&fixture), FixedPicker::default());
    harness.get_by_label("decoded video").click();
    harness.run();
    press(&mut harness, Key::End);
    harness.get_by_label("Play video").click();
    harness.run();
    harness.get_by_label(
        "decoded frame 0 of 9 (left) is in latent frame 0 of 3 (right), which covers decoded frames 0-0 (4x in time)",
    );
    harness.get_by_label("▶ Play video").click();
    // Playing asks for frames without end: step by hand (0.25 s a frame at 16 fps).
    harness.run_steps(2);
    harness.get_by_label("⏸ Pause video");
    assert!(harness.query_by_label_contains("decoded frame 0 of 9").is_none(), "the video moved on");
    harness.get_by_label_contains("covers decoded frames");
}

#[test]
fn attention_stored_in_a_file_shows_in_the_inspector_without_a_live_run() {
    // The exporter fixture stores self- and cross-attention of tokens 0, 5 and 17 at layers 0
    // and 1, at steps 0 and 3 of seed 0.
    let fixture = exporter_fixture();
    let mut harness = harness_with(Some(&fixture), FixedPicker::default());
    harness.get_by_label("Layers").click();
    harness.run();
    harness.get_by_label("Open the attention inspector").click();
    harness.run();
    harness.get_by_label_contains("Token (0, 0, 0) (#0) at step 0 of seed 0");
    harness.get_by_label_contains("stored in the file");
    harness.get_by_label("Layer 0, head mean");
    harness.get_by_label_contains("Cross-attention on the 7 prompt tokens");
    // Step 1 has no captures: the inspector says which steps have; step 3 has them again.
    press(&mut harness, Key::ArrowRight);
    harness.get_by_label_contains("no captures at step 1 (steps with captures: 0, 3)");
    press(&mut harness, Key::End);
    harness.get_by_label_contains("Token (0, 0, 0) (#0) at step 3 of seed 0");
    assert!(harness.state().shows_attention());
}
