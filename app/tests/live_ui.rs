//! Live stepping in the window, headless through `egui_kittest` on the wgpu renderer: a run of
//! the tiny random-weight test model (`tests/fixtures/parity/t2v_hd20`) started on the engine
//! thread, stepped, run to the end, forked, rewound and saved, with the state read back through
//! accessibility labels and the saved file.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]

mod pipeline_folders;
mod support;

use std::path::PathBuf;

use candle_core::{DType, Device};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use stepscope::viewer::StepscopeApp;
use stepscope::viewer::file_picker::FilePicker;
use stepscope::viewer::live::LiveSetup;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::trajectory::{ForkPoint, Intervention, TensorName, TrajectoryReader};
use stepscope_engine::vae::{WanVae, WanVaeEncoding};

use pipeline_folders::{repo_path, ti2v_folder};
use support::{ENGINE_WAIT, run_until};

/// Answers "save as" with a path given in advance.
#[derive(Debug)]
struct SaveTo(PathBuf);

impl FilePicker for SaveTo {
    fn pick_trajectory(&mut self) -> Option<PathBuf> {
        None
    }

    fn save_trajectory(&mut self, _default_name: &str) -> Option<PathBuf> {
        Some(self.0.clone())
    }
}

fn tiny_setup(steps: usize) -> LiveSetup {
    LiveSetup {
        model_dir: repo_path("tests/fixtures/parity/t2v_hd20"),
        prompt_embeds: repo_path("tests/fixtures/parity/sample_t2v_unipc.safetensors"),
        rng_seed: 7,
        size: [3, 8, 8],
        steps,
        shift: 3.0,
        scheduler: SchedulerKind::UniPc,
        capture: "token_norm@all".to_owned(),
        task: None,
        ..LiveSetup::default()
    }
}

fn live_harness(picker: SaveTo, setup: LiveSetup) -> Harness<'static, StepscopeApp> {
    let mut harness = Harness::builder()
        .with_size([1100.0, 640.0])
        .wgpu()
        .build_eframe(move |cc| StepscopeApp::new(cc, None, Box::new(picker)));
    let ctx = harness.ctx.clone();
    harness.state_mut().start_live(&ctx, setup);
    harness.step();
    run_until(&mut harness, "the model to load", |h| !h.state().is_loading());
    // A model that loaded starts on the engine thread; the tool bar is disabled until the engine
    // confirms (a click before that would be lost on a loaded machine).
    run_until(&mut harness, "the engine to start the run", |h| {
        h.state().live_session().is_none_or(|live| !live.is_busy())
    });
    harness
}

/// Clicks the top-left latent pixel of the frame under the label `frame`.
fn click_top_left_pixel(harness: &Harness<'_, StepscopeApp>, frame: &str) {
    let pixel = harness.get_by_label(frame).rect().left_bottom() + egui::vec2(2.0, 10.0);
    harness.hover_at(pixel);
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos: pixel,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::default(),
        });
    }
}

fn has_label(harness: &Harness<'_, StepscopeApp>, label: &str) -> bool {
    harness.query_by_label(label).is_some()
}

fn steps_of(harness: &Harness<'_, StepscopeApp>, seed_idx: usize) -> Vec<usize> {
    let document = harness.state().document().unwrap();
    document.manifest().seeds.get(seed_idx).map(|seed| seed.steps.clone()).unwrap_or_default()
}

#[test]
fn a_live_run_steps_runs_to_the_end_forks_rewinds_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("live.safetensors");
    let mut harness = live_harness(SaveTo(saved.clone()), tiny_setup(5));
    assert!(harness.state().is_live());
    harness.get_by_label("Live: seed 0");
    harness.get_by_label("Step 0 / 4");

    // One step: step 0's frames arrive and show.
    harness.get_by_label("Step").click();
    run_until(&mut harness, "step 0", |h| has_label(h, "frame 2"));
    assert_eq!(steps_of(&harness, 0), [0]);

    // Run to the end: the cursor follows the newest step.
    harness.get_by_label("Run to end").click();
    run_until(&mut harness, "the last step", |h| has_label(h, "Step 4 / 4") && steps_of(h, 0).len() == 5);
    assert!(!harness.state().live_session().unwrap().is_busy() || steps_of(&harness, 0).len() == 5);

    // Fork at step 2: seed 1 appears, is shown, and shares steps 0-1 with seed 0.
    harness.get_by_label("Step strip").hover();
    harness.key_press(egui::Key::Home);
    harness.key_press(egui::Key::ArrowRight);
    harness.key_press(egui::Key::ArrowRight);
    harness.step();
    harness.get_by_label("Step 2 / 4");
    harness.get_by_label("Fork at step 2").click();
    run_until(&mut harness, "the fork", |h| has_label(h, "Live: seed 1"));
    harness.get_by_label("Run to end").click();
    run_until(&mut harness, "the fork's steps", |h| steps_of(h, 1) == [2, 3, 4]);

    // Rewind the fork to step 3 and take that step again.
    harness.key_press(egui::Key::ArrowLeft);
    harness.step();
    harness.get_by_label("Step 3 / 4");
    harness.get_by_label("Rewind to step 3").click();
    run_until(&mut harness, "the rewind", |h| steps_of(h, 1) == [2]);
    harness.get_by_label("Step").click();
    run_until(&mut harness, "the step after the rewind", |h| steps_of(h, 1) == [2, 3]);

    // Save: the file holds both seeds as the window showed them.
    harness.get_by_label("Save…").click();
    harness.step();
    harness.state_mut().wait_for_save(ENGINE_WAIT);
    harness.step();
    let reader = TrajectoryReader::open(&saved).unwrap();
    let seeds = &reader.manifest().seeds;
    assert_eq!(seeds.len(), 2);
    assert_eq!(seeds[0].steps, [0, 1, 2, 3, 4]);
    assert!(seeds[0].final_latents);
    assert_eq!(seeds[1].steps, [2, 3]);
    assert_eq!(seeds[1].forked_from, Some(ForkPoint { seed_index: 0, step: 2 }));
    assert_eq!(reader.manifest().captures.layers, [0, 1]);
    let live_status = harness.state().live_session().unwrap().save_status.clone().unwrap();
    assert!(live_status.starts_with("Saved"), "{live_status}");
}

#[test]
fn a_model_that_does_not_load_reopens_the_dialog_with_the_reason() {
    let mut setup = tiny_setup(3);
    setup.model_dir = repo_path("tests/fixtures/no_such_model");
    let mut harness = live_harness(SaveTo(PathBuf::from("unused")), setup);
    harness.run();
    assert!(!harness.state().is_live());
    harness.get_by_label("New live run");
    harness.get_by_label_contains("loading the model from");
    harness.get_by_label_contains("no_such_model");
}

/// A device this build cannot use (CUDA in a CPU build) reopens the dialog, whose Device picker
/// holds the choice, with what to do.
#[test]
fn a_device_this_build_lacks_reopens_the_dialog_saying_how_to_get_it() {
    if candle_core::utils::cuda_is_available() {
        return;
    }
    let mut setup = tiny_setup(3);
    setup.device = "cuda:0".to_owned();
    let mut harness = live_harness(SaveTo(PathBuf::from("unused")), setup);
    harness.run();
    assert!(!harness.state().is_live());
    harness.get_by_label("Device");
    harness.get_by_label_contains("build with `--features cuda`");
}

/// The session `stepscope` opens on: a maze for the built-in model (`assets/model`), its puzzle
/// as the clean first frame, scored at every step.
#[test]
fn the_builtin_maze_session_scores_the_prediction_at_every_step() {
    let mut setup = LiveSetup::builtin_maze();
    setup.steps = 4;
    let mut harness = live_harness(SaveTo(PathBuf::new()), setup);
    assert!(harness.state().is_live(), "the built-in model should load");
    assert!(has_label(&harness, "Task: maze (instance 47)"));
    harness.get_by_label("Run to end").click();
    run_until(&mut harness, "the last step", |h| steps_of(h, 0).len() == 4);
    run_until(&mut harness, "the score at the last step", |h| {
        h.query_by_label_contains("x0_hat at step 3: score").is_some()
    });
    let document = harness.state().document().unwrap();
    let task = document.manifest().conditioning.task.as_ref().unwrap();
    assert_eq!((task.name.as_str(), task.seed), ("maze", 47));
    assert_eq!(document.manifest().latent_shape, [3, 5, 12, 12]);
    // The puzzle is the clean first frame of the latents at every step.
    let instance = stepscope_engine::analysis::task_instance(task).unwrap();
    let latents = document
        .tensor(&stepscope_engine::trajectory::TensorName::Step {
            seed_idx: 0,
            step_idx: 3,
            kind: stepscope_engine::trajectory::StepTensor::Latents,
        })
        .unwrap();
    let first = latents.narrow(1, 0, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(first, instance.first_frame.values());
}

/// The attention inspector: a click on a frame pixel asks the engine where that token attends,
/// the window shows the layer x head grid and follows the step cursor.
#[test]
fn clicking_a_pixel_shows_where_its_token_attends_and_follows_the_step() {
    let mut harness = live_harness(SaveTo(PathBuf::new()), tiny_setup(4));
    harness.get_by_label("Step").click();
    run_until(&mut harness, "step 0", |h| has_label(h, "frame 1"));
    harness.run();

    // The top-left pixel of frame 1 (latent [4, 3, 8, 8], 1x2x2 patches): token (1, 0, 0) = #16.
    click_top_left_pixel(&harness, "frame 1");
    run_until(&mut harness, "the attention maps", |h| h.state().shows_attention());
    // A new window is laid out unseen in its first frame.
    harness.step();
    harness.step();
    harness.get_by_label_contains("Token (1, 0, 0) (#16) at step 0 of seed 0");
    harness.get_by_label("layer 0");
    harness.get_by_label("layer 1");
    harness.get_by_label("head mean");
    harness.get_by_label_contains("Cross-attention on the");

    // Another step (clicked through accesskit: the window may cover the button): the cursor
    // follows it, and the inspector asks again for the new step.
    harness.get_by_label("Step").click_accesskit();
    run_until(&mut harness, "the attention at step 1", |h| {
        h.query_by_label_contains("Token (1, 0, 0) (#16) at step 1 of seed 0").is_some()
    });
}

/// Interventions by hand: paint pixels of the prediction and continue, or skip a block; each
/// becomes a new seed shown next to its parent, and the file records how it was altered.
#[test]
fn painting_the_prediction_or_skipping_a_block_forks_an_altered_seed() {
    let mut harness = live_harness(SaveTo(PathBuf::new()), tiny_setup(4));
    for step in 0..2 {
        harness.get_by_label("Step").click();
        run_until(&mut harness, "a step", |h| steps_of(h, 0).len() == step + 1);
    }
    harness.run();
    harness.get_by_label("Step 1 / 3");

    // Paint the top-left token of frame 2 at step 1, then continue from step 2.
    harness.get_by_label("Paint x0_hat").click();
    harness.run();
    click_top_left_pixel(&harness, "frame 2");
    harness.run();
    harness.get_by_label("4 pixels"); // the token brush paints a 2x2 patch
    harness.get_by_label("Continue painted from step 2").click();
    run_until(&mut harness, "the painted fork", |h| has_label(h, "Live: seed 1"));
    let seeds = harness.state().document().unwrap().manifest().seeds.clone();
    assert_eq!(seeds[1].forked_from, Some(ForkPoint { seed_index: 0, step: 2 }));
    assert_eq!(
        seeds[1].intervention,
        Some(Intervention::PaintX0 {
            pixels: vec![[2, 0, 0], [2, 0, 1], [2, 1, 0], [2, 1, 1]],
            value: vec![0.0; 4]
        })
    );
    // Shown next to its parent.
    harness.get_by_label("|0 - 1|");
    harness.get_by_label("■ seed 1 (forked from 0 at step 2, x0_hat of step 1 painted at 4 pixels)");

    // Knock layer 0 out of the fork from the cursor's step (still 1).
    harness.get_by_label("Fork without it from step 1").click();
    run_until(&mut harness, "the ablated fork", |h| has_label(h, "Live: seed 2"));
    let seeds = harness.state().document().unwrap().manifest().seeds.clone();
    assert_eq!(seeds[2].forked_from, Some(ForkPoint { seed_index: 1, step: 1 }));
    assert_eq!(seeds[2].intervention, Some(Intervention::SkipLayers { layers: vec![0] }));
    harness.get_by_label("Run to end").click();
    run_until(&mut harness, "the ablated fork's steps", |h| steps_of(h, 2) == [1, 2, 3]);

    // A seed ensemble (4 members from the next noise seed, merged over 5 steps), run to the end.
    harness.get_by_label("Start ensemble").click();
    run_until(&mut harness, "the ensemble", |h| has_label(h, "Live: seed 3"));
    let seeds = harness.state().document().unwrap().manifest().seeds.clone();
    let Some(Intervention::Ensemble { rng_seeds, merge_steps }) = &seeds[3].intervention else {
        panic!("expected an ensemble, got {:?}", seeds[3].intervention)
    };
    assert_eq!((rng_seeds.len(), *merge_steps), (4, 4), "merge steps are capped at the run's 4 steps");
    harness.get_by_label("Run to end").click();
    run_until(&mut harness, "the ensemble's steps", |h| steps_of(h, 3) == [0, 1, 2, 3]);
}

/// A live run from a typed prompt: the tiny pipeline folder (`tests/fixtures/wan_pipeline_tiny`)
/// as the model folder, its UMT5 encoding the prompt and the negative prompt on the loading
/// thread, its scheduler config setting the sampler; the run steps like any other.
#[test]
fn a_pipeline_folder_runs_live_from_a_typed_prompt() {
    let setup = LiveSetup {
        model_dir: repo_path("tests/fixtures/wan_pipeline_tiny"),
        prompt: "a red ball rolls across a wooden table".to_owned(),
        guidance: 3.0,
        rng_seed: 5,
        size: [3, 4, 6],
        steps: 3,
        capture: String::new(),
        task: None,
        ..LiveSetup::default()
    };
    assert!(setup.is_pipeline());
    let mut harness = live_harness(SaveTo(PathBuf::new()), setup);
    harness.get_by_label("Step").click();
    run_until(&mut harness, "a step", |h| steps_of(h, 0).len() == 1);
    let manifest = harness.state().document().unwrap().manifest().clone();
    assert_eq!(manifest.conditioning.prompt.as_deref(), Some("a red ball rolls across a wooden table"));
    assert!(manifest.conditioning.prompt_embeddings.starts_with("umt5:"));
    assert!(manifest.conditioning.negative_prompt, "guidance 3 encodes the negative prompt");
    assert_eq!(manifest.latent_shape, [16, 3, 4, 6]);

    // The pipeline's VAE decodes the step on its own thread; the record then holds the video
    // under the exporter's name, as the VAE decodes the step's x0 directly.
    harness.get_by_label("Decode step 0").click();
    run_until(&mut harness, "step 0 decoded", |h| {
        h.state().document().unwrap().manifest().seeds[0].video_steps == [0]
    });
    let document = harness.state().document().unwrap();
    let x0 = document.tensor(&TensorName::x0(0, 0)).unwrap();
    let video = document.tensor(&TensorName::Video { seed_idx: 0, step_idx: 0 }).unwrap();
    let vae =
        WanVae::load(&repo_path("tests/fixtures/wan_pipeline_tiny/vae"), DType::F32, &Device::Cpu).unwrap();
    let expected = vae.decode_latents(&x0).unwrap();
    let error = (video - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(error <= 1e-6, "the live decode differs from a direct one by {error}");
    assert_eq!(document.manifest().video.as_ref().map(|video| video.shape), Some([3, 9, 32, 48]));
    // Following: each new step is decoded as it arrives.
    harness.get_by_label("decode each step").click();
    harness.get_by_label("Step").click();
    run_until(&mut harness, "step 1 decoded", |h| {
        h.state().document().unwrap().manifest().seeds[0].video_steps == [0, 1]
    });
}

/// A live image-to-video run (the tiny Wan2.2 TI2V folder of
/// `tests/reference/wan_ti2v_fixture.py`): the image is encoded by the folder's VAE into the
/// condition, the first latent frame the session starts from, and the run steps in the window;
/// without an image the setup says what to pick.
#[test]
fn an_image_to_video_pipeline_runs_live_from_its_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = ti2v_folder(dir.path());
    let image = pipeline.join("image.png");
    let setup = LiveSetup {
        model_dir: pipeline.clone(),
        prompt: "the red ball in the picture rolls to the left".to_owned(),
        size: [3, 4, 6],
        steps: 2,
        capture: String::new(),
        image: image.clone(),
        task: None,
        ..LiveSetup::default()
    };
    let request = setup.to_request().unwrap();
    let condition = request.conditioning.condition_latent.clone().expect("the image's latent");
    assert_eq!(condition.dims(), [48, 1, 4, 6]);
    let encoding = WanVaeEncoding::load(&pipeline.join("vae"), DType::F32, &Device::Cpu).unwrap();
    let frame = stepscope::first_frame::load_first_frame(&image, [64, 96], &Device::Cpu).unwrap();
    let direct = encoding.encode_video(&frame).unwrap();
    let first = request.session().unwrap().latents().unwrap().narrow(1, 0, 1).unwrap();
    let error = (first - direct).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(error == 0.0, "the run's first latent frame is the image's latent (off by {error})");
    let without = LiveSetup { image: PathBuf::new(), ..setup.clone() };
    let err = format!("{:#}", without.to_request().unwrap_err());
    assert!(err.contains("pick the first frame's image"), "{err}");

    let mut harness = live_harness(SaveTo(PathBuf::new()), setup);
    harness.get_by_label("Step").click();
    run_until(&mut harness, "a step", |h| steps_of(h, 0).len() == 1);
    let manifest = harness.state().document().unwrap().manifest().clone();
    assert!(
        manifest.conditioning.condition_frame,
        "the live run is marked as conditioned on its first frame"
    );
    assert_eq!(manifest.latent_shape, [48, 3, 4, 6]);
}
