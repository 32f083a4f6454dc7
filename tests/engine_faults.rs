//! The engine thread under faults (cargo feature `fault-injection`, planned per step): a step
//! that fails and one that panics come back as error events and the run goes on from where it
//! was; a model load that fails halfway (a truncated weights file) is an error and the next
//! load works; a pause reaches a running engine within a step; dropping the handle mid-run
//! joins the thread. The fault plan is global to this test binary, so its tests run one at a
//! time.
#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "test code: a failure is the report")]
use std::sync::Mutex;
use std::time::Instant;

use candle_core::{DType, Device};
use stepscope_engine::model::WanTransformer;
use stepscope_engine::session::fault::{self, Fault};
use stepscope_engine::worker::{EngineCommand, EngineEvent, EngineHandle, RunId, RunRequest};
use stepscope_tests::{fixture, next_event, tiny_run_request};

/// One test at a time: the fault plan is shared by every session in the process.
static SERIAL: Mutex<()> = Mutex::new(());

fn request(steps: usize) -> RunRequest {
    tiny_run_request(steps)
}

fn next(engine: &EngineHandle) -> EngineEvent {
    next_event(engine)
}

/// Sends one Step and returns the step it captured, or the error it reported.
fn step(engine: &EngineHandle) -> Result<usize, String> {
    engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
    match next(engine) {
        EngineEvent::StepCaptured { record, .. } => {
            if record.step_idx + 1 == 4 {
                assert!(matches!(next(engine), EngineEvent::Finished { .. }));
            }
            Ok(record.step_idx)
        }
        EngineEvent::Error { message } => Err(message),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_failing_and_a_panicking_step_are_reported_and_the_run_goes_on() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    fault::clear();
    let engine = EngineHandle::spawn(|| {}).unwrap();
    fault::inject(1, Fault::Fail);
    fault::inject(2, Fault::Panic);
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(4)) }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::SeedStarted { .. }));
    assert_eq!(step(&engine), Ok(0));
    let failed = step(&engine).unwrap_err();
    assert!(failed.contains("step 1: injected failure"), "{failed}");
    assert_eq!(step(&engine), Ok(1), "the failed step is taken again, from the same state");
    let panicked = step(&engine).unwrap_err();
    assert!(
        panicked.contains("step 2 panicked: injected panic at step 2; the step was not taken"),
        "{panicked}"
    );
    assert_eq!(step(&engine), Ok(2), "after a panic too");
    assert_eq!(step(&engine), Ok(3));
    // A new run on the same thread works from the start.
    engine.send(EngineCommand::Start { run: RunId(2), request: Box::new(request(4)) }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::SeedStarted { .. }));
    assert_eq!((0..4).map(|_| step(&engine)).collect::<Vec<_>>(), [Ok(0), Ok(1), Ok(2), Ok(3)]);
}

#[test]
fn a_running_engine_fails_a_step_stops_and_runs_on_when_asked() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    fault::clear();
    let engine = EngineHandle::spawn(|| {}).unwrap();
    fault::inject(2, Fault::Panic);
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(4)) }).unwrap();
    next(&engine);
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    let mut captured = Vec::new();
    let message = loop {
        match next(&engine) {
            EngineEvent::StepCaptured { record, .. } => captured.push(record.step_idx),
            EngineEvent::Error { message } => break message,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(captured, [0, 1]);
    assert!(message.contains("seed 0: step 2 panicked"), "{message}");
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::StepCaptured { record, .. } if record.step_idx == 2));
    assert!(matches!(next(&engine), EngineEvent::StepCaptured { record, .. } if record.step_idx == 3));
    assert!(matches!(next(&engine), EngineEvent::Finished { .. }));
}

#[test]
fn a_model_load_that_fails_halfway_is_an_error_and_the_next_load_works() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let source = fixture("parity/t2v_hd20");
    std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
    let weights = std::fs::read(source.join("diffusion_pytorch_model.safetensors")).unwrap();
    // The header and the first half of the weights: the load gets past the config and fails
    // in the weights.
    std::fs::write(dir.path().join("diffusion_pytorch_model.safetensors"), &weights[..weights.len() / 2])
        .unwrap();
    let err = WanTransformer::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("diffusion_pytorch_model.safetensors"), "names the file: {err}");
    WanTransformer::load(&source, DType::F32, &Device::Cpu).expect("the next load works");
}

#[test]
fn a_pause_reaches_a_running_engine_within_a_step_and_dropping_the_handle_joins_it() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    fault::clear();
    let engine = EngineHandle::spawn(|| {}).unwrap();
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(200)) }).unwrap();
    next(&engine);
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    // Steps as they arrive, timed, then a pause after the fifth.
    let mut arrivals = Vec::new();
    let mut last_step = 0;
    while arrivals.len() < 5 {
        if let EngineEvent::StepCaptured { record, .. } = next(&engine) {
            arrivals.push(Instant::now());
            last_step = record.step_idx;
        }
    }
    let sent = Instant::now();
    engine.send(EngineCommand::Pause).unwrap();
    let (paused_at, steps_after) = {
        let mut steps_after = 0;
        loop {
            match next(&engine) {
                EngineEvent::Paused { step_idx, .. } => break (step_idx, steps_after),
                EngineEvent::StepCaptured { .. } => steps_after += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let latency = sent.elapsed();
    let step_time = arrivals[4].duration_since(arrivals[0]) / 4;
    println!(
        "pause reached the engine {:.1} ms after it was sent; a step takes {:.1} ms; {steps_after} step(s) \
         finished in between",
        latency.as_secs_f64() * 1e3,
        step_time.as_secs_f64() * 1e3
    );
    // The step under way when the pause was sent finishes (its event may already have been
    // queued): no second step starts.
    assert!(steps_after <= 2, "{steps_after} steps ran after the pause");
    assert!(paused_at <= last_step + 3, "paused at step {paused_at}, last seen {last_step}");
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    next(&engine);
    let dropping = Instant::now();
    drop(engine);
    println!(
        "dropping the handle mid-run joined the thread in {:.1} ms",
        dropping.elapsed().as_secs_f64() * 1e3
    );
}
