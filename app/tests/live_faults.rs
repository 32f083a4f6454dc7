//! A live run whose step panics inside the engine (a fault planned through the engine's
//! `fault-injection` feature): the window stays up, shows the engine's error, and the next
//! step works from the same state. Its own test binary, because the fault plan is global to
//! the process.
#![allow(clippy::unwrap_used, reason = "test code: a failure is the report")]

use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use stepscope::viewer::StepscopeApp;
use stepscope::viewer::live::LiveSetup;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::fault::{self, Fault};
use support::{FixedPicker, run_until};

mod support;

fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn steps_of(harness: &Harness<'_, StepscopeApp>) -> Vec<usize> {
    harness.state().document().unwrap().manifest().seeds[0].steps.clone()
}

#[test]
fn a_panicking_step_shows_the_error_and_the_next_step_works() {
    let setup = LiveSetup {
        model_dir: repo_path("tests/fixtures/parity/t2v_hd20"),
        prompt_embeds: repo_path("tests/fixtures/parity/sample_t2v_unipc.safetensors"),
        rng_seed: 7,
        size: [3, 8, 8],
        steps: 4,
        shift: 3.0,
        scheduler: SchedulerKind::UniPc,
        ..LiveSetup::default()
    };
    let mut harness = Harness::builder()
        .with_size([1100.0, 640.0])
        .wgpu()
        .build_eframe(|cc| StepscopeApp::new(cc, None, Box::new(FixedPicker::default())));
    let ctx = harness.ctx.clone();
    harness.state_mut().start_live(&ctx, setup);
    run_until(&mut harness, "the run to start", |h| {
        !h.state().is_loading() && h.state().live_session().is_some_and(|live| !live.is_busy())
    });
    fault::inject(1, Fault::Panic);
    harness.get_by_label("Step").click();
    run_until(&mut harness, "step 0", |h| steps_of(h) == [0]);
    harness.get_by_label("Step").click();
    run_until(&mut harness, "the error", |h| h.query(By::new().label_contains("Engine error")).is_some());
    harness.get(
        By::new().label_contains(
            "Engine error: step 1 panicked: injected panic at step 1; the step was not taken",
        ),
    );
    assert_eq!(steps_of(&harness), [0], "the failed step was not recorded");
    run_until(&mut harness, "the engine to be idle", |h| {
        h.state().live_session().is_some_and(|live| !live.is_busy())
    });
    harness.get_by_label("Step").click();
    run_until(&mut harness, "step 1 taken again", |h| steps_of(h) == [0, 1]);
}
