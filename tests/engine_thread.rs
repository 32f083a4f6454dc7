//! The engine thread: runs stepped from "UI" commands arrive as events, forks and rewinds work,
//! errors come back as events, and dropping the handle stops and joins the thread.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{CaptureKind, NoiseSource, SamplingSession};
use stepscope_engine::trajectory::{ForkPoint, Intervention, StorageDtype, TensorName, TrajectoryReader};
use stepscope_engine::worker::{
    EngineCommand, EngineEvent, EngineHandle, EngineMode, LiveRecord, RecordChange, RunId, RunRequest,
};
use stepscope_tests::{max_abs_diff, next_event, tiny_run_request};

const WAIT: Duration = Duration::from_secs(30);

fn request(steps: usize) -> RunRequest {
    tiny_run_request(steps)
}

fn next(engine: &EngineHandle) -> EngineEvent {
    next_event(engine)
}

fn spawn() -> (EngineHandle, Arc<AtomicUsize>) {
    let repaints = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&repaints);
    let engine = EngineHandle::spawn(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    (engine, repaints)
}

#[test]
fn a_run_steps_on_command_and_runs_to_the_end() {
    let (engine, repaints) = spawn();
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(5)) }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::SeedStarted { seed_idx: 0, step_idx: 0, .. }));
    engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
    match next(&engine) {
        EngineEvent::StepCaptured { seed_idx: 0, record } => assert_eq!(record.step_idx, 0),
        other => panic!("expected step 0, got {other:?}"),
    }
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    let mut steps = Vec::new();
    loop {
        match next(&engine) {
            EngineEvent::StepCaptured { record, .. } => steps.push(record.step_idx),
            EngineEvent::Finished { seed_idx: 0, final_latents } => {
                assert_eq!(final_latents.dims(), &[4, 3, 8, 8]);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(steps, vec![1, 2, 3, 4]);
    assert!(repaints.load(Ordering::Relaxed) >= 7, "a repaint request follows every event");
}

#[test]
fn forks_and_rewinds_reproduce_the_same_steps() {
    let (engine, _) = spawn();
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(4)) }).unwrap();
    next(&engine);
    let mut first_pass = Vec::new();
    for _ in 0..3 {
        engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
        if let EngineEvent::StepCaptured { record, .. } = next(&engine) {
            first_pass.push(record);
        }
    }
    // Back to step 1 and forward again: the same x0.
    engine.send(EngineCommand::Rewind { seed_idx: 0, step_idx: 1 }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::Rewound { seed_idx: 0, step_idx: 1 }));
    engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
    let EngineEvent::StepCaptured { record, .. } = next(&engine) else { panic!("expected a step") };
    assert_eq!(record.step_idx, 1);
    assert!(max_abs_diff(&record.x0, &first_pass[1].x0) == 0.0);

    // A fork at step 2 with fresh noise is a new seed that starts at step 2 and diverges.
    engine.send(EngineCommand::Fork { seed_idx: 0, step_idx: 2, rng_seed: 99 }).unwrap();
    match next(&engine) {
        EngineEvent::SeedStarted { seed_idx: 1, step_idx: 2, forked_from: Some((0, 2)), .. } => {}
        other => panic!("expected the fork, got {other:?}"),
    }
    engine.send(EngineCommand::Step { seed_idx: 1 }).unwrap();
    let EngineEvent::StepCaptured { seed_idx: 1, record } = next(&engine) else { panic!("expected a step") };
    assert_eq!(record.step_idx, 2);
    assert!(max_abs_diff(&record.x0, &first_pass[2].x0) > 1e-3);
}

#[test]
fn errors_come_back_as_events_and_the_thread_carries_on() {
    let (engine, _) = spawn();
    engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("no run is started"), "{message}");
    let mut bad = request(3);
    bad.latent_shape = [4, 3, 7, 8];
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(bad) }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("not a positive multiple"), "{message}");
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(3)) }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::SeedStarted { .. }));
    engine.send(EngineCommand::Rewind { seed_idx: 0, step_idx: 2 }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("has not been reached"), "{message}");
}

#[test]
fn pausing_stops_a_long_run_and_dropping_joins_the_thread() {
    let (engine, _) = spawn();
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(200)) }).unwrap();
    next(&engine);
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    next(&engine);
    engine.send(EngineCommand::Pause).unwrap();
    let paused_at = loop {
        match next(&engine) {
            EngineEvent::Paused { step_idx, .. } => break step_idx,
            EngineEvent::StepCaptured { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(paused_at < 200, "paused before the end");
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    // Dropping mid-run stops after the current step and joins (the test would hang otherwise).
    drop(engine);
}

/// Sends `command` and feeds the events up to `until` into `record`.
fn drive(
    engine: &EngineHandle,
    record: &mut LiveRecord,
    command: EngineCommand,
    until: impl Fn(&EngineEvent) -> bool,
) -> Vec<RecordChange> {
    engine.send(command).unwrap();
    let mut changes = Vec::new();
    loop {
        let event = next(engine);
        assert!(!matches!(event, EngineEvent::Error { .. }), "{event:?}");
        changes.extend(record.apply(&event));
        if until(&event) {
            return changes;
        }
    }
}

#[test]
fn a_live_record_of_a_rewound_and_forked_run_saves_what_a_straight_run_computes() {
    let (engine, _) = spawn();
    let request = request(4);
    let mut record = LiveRecord::new(&request, StorageDtype::F32).unwrap();
    let straight = {
        let mut session = SamplingSession::new(
            Arc::clone(&request.model),
            Arc::clone(&request.conditioning),
            request.settings.clone(),
            request.latent_shape,
            &request.noise,
        )
        .unwrap();
        (0..4).map(|_| session.step().unwrap().x0).collect::<Vec<_>>()
    };
    let started = |e: &EngineEvent| matches!(e, EngineEvent::SeedStarted { .. });
    let finished = |e: &EngineEvent| matches!(e, EngineEvent::Finished { .. });
    drive(&engine, &mut record, EngineCommand::Start { run: RunId(1), request: Box::new(request) }, started);
    for _ in 0..3 {
        drive(&engine, &mut record, EngineCommand::Step { seed_idx: 0 }, |e| {
            matches!(e, EngineEvent::StepCaptured { .. })
        });
    }
    let rewound = EngineCommand::Rewind { seed_idx: 0, step_idx: 1 };
    let changes = drive(&engine, &mut record, rewound, |e| matches!(e, EngineEvent::Rewound { .. }));
    assert_eq!(changes, [RecordChange::Rewound { seed_idx: 0, step_idx: 1 }]);
    assert_eq!(record.steps_taken(0), 1);
    assert!(record.tensor(&TensorName::x0(0, 2)).is_none(), "rewinding drops the later steps");
    drive(&engine, &mut record, EngineCommand::RunToEnd { seed_idx: 0 }, finished);
    let fork = EngineCommand::Fork { seed_idx: 0, step_idx: 2, rng_seed: 5 };
    assert_eq!(drive(&engine, &mut record, fork, started), [RecordChange::SeedAdded { seed_idx: 1 }]);
    drive(&engine, &mut record, EngineCommand::RunToEnd { seed_idx: 1 }, finished);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.safetensors");
    record.recorder().write(&path).unwrap();
    let reader = TrajectoryReader::open(&path).unwrap();
    let seeds = &reader.manifest().seeds;
    assert_eq!(seeds[0].steps, [0, 1, 2, 3]);
    assert_eq!(seeds[1].steps, [2, 3]);
    assert_eq!(seeds[1].forked_from, Some(ForkPoint { seed_index: 0, step: 2 }));
    assert_eq!(reader.manifest().model.source, "t2v_hd20");
    for (step_idx, expected) in straight.iter().enumerate() {
        let saved = reader.load(&TensorName::x0(0, step_idx)).unwrap();
        assert!(max_abs_diff(&saved, expected) == 0.0, "x0 at step {step_idx} is saved bit for bit");
    }
}

#[test]
fn attention_on_demand_is_the_attention_a_capturing_run_records_at_that_step() {
    let (engine, _) = spawn();
    engine.send(EngineCommand::Start { run: RunId(1), request: Box::new(request(5)) }).unwrap();
    assert!(matches!(next(&engine), EngineEvent::SeedStarted { .. }));
    for _ in 0..3 {
        engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
        assert!(matches!(next(&engine), EngineEvent::StepCaptured { .. }));
    }
    let query_token = 17;
    engine.send(EngineCommand::InspectAttention { seed_idx: 0, step_idx: 1, query_token }).unwrap();
    let EngineEvent::Attention { seed_idx: 0, maps } = next(&engine) else { panic!("expected attention") };
    assert_eq!((maps.step_idx, maps.query_token), (1, query_token));
    let layers = maps.self_attn.dim(0).unwrap();
    let tokens = maps.grid.len();
    assert_eq!(maps.self_attn.dims()[2], tokens);
    assert_eq!(maps.cross_attn.dims()[..2], maps.self_attn.dims()[..2]);
    // Every row is a distribution.
    for probs in [&maps.self_attn, &maps.cross_attn] {
        let sums = probs.sum(2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
    }

    // The same step of a straight run that captures this query's attention everywhere.
    let mut reference = request(5);
    reference.settings.capture = format!("self_attn,cross_attn@all:q={query_token}").parse().unwrap();
    let mut session = SamplingSession::new(
        reference.model,
        reference.conditioning,
        reference.settings,
        reference.latent_shape,
        &reference.noise,
    )
    .unwrap();
    session.step().unwrap();
    let record = session.step().unwrap();
    assert_eq!(record.layers.len(), layers);
    for (layer_idx, capture) in record.layers.iter().enumerate() {
        for (kind, tensor) in &capture.tensors {
            // Captured as [heads, Q = 1, N | L].
            let captured = tensor.squeeze(1).unwrap();
            let on_demand = match kind {
                CaptureKind::SelfAttn => maps.self_attn.get(layer_idx).unwrap(),
                CaptureKind::CrossAttn => maps.cross_attn.get(layer_idx).unwrap(),
                other => panic!("unexpected capture {other:?}"),
            };
            let diff = max_abs_diff(&captured, &on_demand);
            assert!(diff <= 1e-6, "layer {layer_idx} {kind:?}: {diff}");
        }
    }

    // Bad requests come back as errors and leave the run as it was.
    engine.send(EngineCommand::InspectAttention { seed_idx: 0, step_idx: 4, query_token }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("has not been reached"), "{message}");
    engine.send(EngineCommand::InspectAttention { seed_idx: 0, step_idx: 0, query_token: tokens }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains(&format!("outside the {tokens} tokens")), "{message}");
    engine.send(EngineCommand::Step { seed_idx: 0 }).unwrap();
    match next(&engine) {
        EngineEvent::StepCaptured { record, .. } => assert_eq!(record.step_idx, 3),
        other => panic!("expected step 3, got {other:?}"),
    }
}

/// The latents a seed's step `step_idx` was fed, from the record.
fn latents_at(record: &LiveRecord, seed_idx: usize, step_idx: usize) -> candle_core::Tensor {
    let name =
        TensorName::Step { seed_idx, step_idx, kind: stepscope_engine::trajectory::StepTensor::Latents };
    record.tensor(&name).unwrap().clone()
}

#[test]
fn interventions_paint_the_prediction_or_skip_a_block_and_are_saved_with_the_fork() {
    let (engine, _) = spawn();
    let mut request = request(4);
    request.settings.scheduler = SchedulerKind::Euler;
    let mut record = LiveRecord::new(&request, StorageDtype::F32).unwrap();
    let started = |e: &EngineEvent| matches!(e, EngineEvent::SeedStarted { .. });
    let stepped = |e: &EngineEvent| matches!(e, EngineEvent::StepCaptured { .. });
    drive(&engine, &mut record, EngineCommand::Start { run: RunId(1), request: Box::new(request) }, started);
    for _ in 0..3 {
        drive(&engine, &mut record, EngineCommand::Step { seed_idx: 0 }, stepped);
    }

    // Paint the top-left 2x2 pixels of frame 1 in step 1's x0_hat and continue from step 2.
    let value = vec![0.5_f32, -0.25, 1.0, 0.0];
    let pixels = vec![[1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]];
    let paint = Intervention::PaintX0 { pixels, value: value.clone() };
    let command = EngineCommand::Intervene { seed_idx: 0, step_idx: 2, intervention: paint.clone() };
    assert_eq!(drive(&engine, &mut record, command, started), [RecordChange::SeedAdded { seed_idx: 1 }]);
    drive(&engine, &mut record, EngineCommand::Step { seed_idx: 1 }, stepped);
    let sigma = record.manifest().schedule.sigmas[2];
    let x0 = record.tensor(&TensorName::x0(0, 1)).unwrap().clone();
    let shift = (latents_at(&record, 1, 2) - latents_at(&record, 0, 2)).unwrap();
    let [channels, frames, height, width] = [4, 3, 8, 8];
    let shift = shift.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let x0 = x0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (c, &v) in value.iter().enumerate().take(channels) {
        for f in 0..frames {
            for y in 0..height {
                for x in 0..width {
                    let i = ((c * frames + f) * height + y) * width + x;
                    let painted = f == 1 && y < 2 && x < 2;
                    let expected = if painted { (1.0 - sigma as f32) * (v - x0[i]) } else { 0.0 };
                    assert!(
                        (shift[i] - expected).abs() < 1e-5,
                        "c{c} f{f} y{y} x{x}: {} vs {expected}",
                        shift[i]
                    );
                }
            }
        }
    }

    // Skip block 1 from step 1 on: the fork's step 1 differs from the parent's.
    let skip = Intervention::SkipLayers { layers: vec![1] };
    let command = EngineCommand::Intervene { seed_idx: 0, step_idx: 1, intervention: skip.clone() };
    drive(&engine, &mut record, command, started);
    drive(&engine, &mut record, EngineCommand::Step { seed_idx: 2 }, stepped);
    let parent = record.tensor(&TensorName::x0(0, 1)).unwrap();
    let ablated = record.tensor(&TensorName::x0(2, 1)).unwrap();
    assert!(max_abs_diff(&latents_at(&record, 2, 1), &latents_at(&record, 0, 1)) == 0.0, "same input");
    assert!(max_abs_diff(parent, ablated) > 1e-4, "skipping a block changes the prediction");

    // Bad requests are errors; the run goes on.
    let bad = [
        (0, Intervention::PaintX0 { pixels: vec![[0, 0, 0]], value: value.clone() }, "continue from step 1"),
        (2, Intervention::PaintX0 { pixels: vec![[0, 8, 0]], value: value.clone() }, "outside the 3 x 8 x 8"),
        (2, Intervention::PaintX0 { pixels: vec![[0, 0, 0]], value: vec![1.0] }, "4 channels"),
        (2, Intervention::SkipLayers { layers: vec![9] }, "layer 9 does not exist"),
    ];
    for (step_idx, intervention, expected) in bad {
        engine.send(EngineCommand::Intervene { seed_idx: 0, step_idx, intervention }).unwrap();
        let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
        assert!(message.contains(expected), "{message}");
    }

    // The file says how each fork was altered.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("altered.safetensors");
    record.recorder().write(&path).unwrap();
    let reader = TrajectoryReader::open(&path).unwrap();
    let seeds = &reader.manifest().seeds;
    assert_eq!(seeds[0].intervention, None);
    assert_eq!(seeds[1].intervention, Some(paint));
    assert_eq!(seeds[1].forked_from, Some(ForkPoint { seed_index: 0, step: 2 }));
    assert_eq!(seeds[2].intervention, Some(skip));
    assert_eq!(seeds[2].steps, [1]);
}

#[test]
fn a_live_ensemble_merges_its_members_then_runs_the_first_alone() {
    let (engine, _) = spawn();
    let request = request(4);
    let mut record = LiveRecord::new(&request, StorageDtype::F32).unwrap();
    // The same ensemble by hand: three members, latents averaged after steps 0 and 1.
    let expected = {
        let member = |rng_seed| {
            SamplingSession::new(
                Arc::clone(&request.model),
                Arc::clone(&request.conditioning),
                request.settings.clone(),
                request.latent_shape,
                &NoiseSource::Seed(rng_seed),
            )
            .unwrap()
        };
        let mut members: Vec<SamplingSession> = [21, 22, 23].into_iter().map(member).collect();
        for _ in 0..2 {
            let mut sum: Option<candle_core::Tensor> = None;
            for member in &mut members {
                member.step().unwrap();
                let latents = member.latents().unwrap();
                sum = Some(sum.map_or(latents.clone(), |sum| (sum + latents).unwrap()));
            }
            let mean = (sum.unwrap() / 3.0).unwrap();
            members = members.iter().map(|m| m.fork_with_latents(&mean).unwrap()).collect();
        }
        let mut first = members.swap_remove(0);
        while !first.is_finished() {
            first.step().unwrap();
        }
        first.latents().unwrap()
    };
    let started = |e: &EngineEvent| matches!(e, EngineEvent::SeedStarted { .. });
    drive(&engine, &mut record, EngineCommand::Start { run: RunId(1), request: Box::new(request) }, started);
    let ensemble = Intervention::Ensemble { rng_seeds: vec![21, 22, 23], merge_steps: 2 };
    let command = EngineCommand::Intervene { seed_idx: 0, step_idx: 0, intervention: ensemble.clone() };
    drive(&engine, &mut record, command, started);
    engine.send(EngineCommand::RunToEnd { seed_idx: 1 }).unwrap();
    let final_latents = loop {
        let event = next(&engine);
        assert!(!matches!(event, EngineEvent::Error { .. }), "{event:?}");
        record.apply(&event);
        if let EngineEvent::Finished { final_latents, .. } = event {
            break final_latents;
        }
    };
    assert!(max_abs_diff(&final_latents, &expected) == 0.0, "the live ensemble is the ensemble");
    assert_eq!(record.manifest().seeds[1].intervention, Some(ensemble));

    // Its merged steps cannot be taken again; later ones can.
    engine.send(EngineCommand::Rewind { seed_idx: 1, step_idx: 1 }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("merged until step 2"), "{message}");
    let rewind = EngineCommand::Rewind { seed_idx: 1, step_idx: 2 };
    drive(&engine, &mut record, rewind, |e| matches!(e, EngineEvent::Rewound { .. }));
    let bad = Intervention::Ensemble { rng_seeds: vec![1], merge_steps: 2 };
    engine.send(EngineCommand::Intervene { seed_idx: 0, step_idx: 0, intervention: bad }).unwrap();
    let EngineEvent::Error { message } = next(&engine) else { panic!("expected an error") };
    assert!(message.contains("2 to 64 seeds"), "{message}");
}

#[test]
fn events_name_their_run_and_the_engine_reports_the_commands_it_has_handled() {
    let (engine, _) = spawn();
    let start = |run, steps| EngineCommand::Start { run: RunId(run), request: Box::new(request(steps)) };
    engine.send(start(7, 200)).unwrap();
    engine.send(EngineCommand::RunToEnd { seed_idx: 0 }).unwrap();
    // Replaced while it runs: its queued steps must be told apart from the new run's events.
    engine.send(start(8, 3)).unwrap();
    assert_eq!(engine.commands_sent(), 3);
    let mut new_run_started = false;
    let mut states = Vec::new();
    loop {
        let message = engine.recv_timeout(WAIT).expect("an event from the engine");
        match message.event {
            EngineEvent::StepCaptured { .. } => assert_eq!(message.run, Some(RunId(7)), "only run 7 stepped"),
            EngineEvent::SeedStarted { .. } => new_run_started |= message.run == Some(RunId(8)),
            EngineEvent::State(state) => {
                states.push(state);
                if state.commands_handled == engine.commands_sent() {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(new_run_started, "run 8's seed 0 is tagged with its id");
    let handled: Vec<u64> = states.iter().map(|state| state.commands_handled).collect();
    assert_eq!(handled, [1, 2, 3], "one report per command, in order");
    assert_eq!(states[1].mode, EngineMode::Running { seed_idx: 0 });
    assert_eq!(states[2].mode, EngineMode::Idle, "a new run starts idle");
}
