//! Whole sampling runs of the step-at-a-time session against diffusers' Wan pipelines, step by
//! step (fixtures from `tests/reference/generate_parity.py`): text-to-video with UniPC and
//! classifier-free guidance, and a TI2V run (clean first frame at timestep 0) with Euler.
//! Tolerance: 1e-4 absolute in f32 on every tensor of every step.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
#![allow(clippy::float_cmp, reason = "some checks demand bit-identical results")]
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use stepscope_engine::model::WanTransformer;
use stepscope_engine::scheduler::SchedulerKind;
use stepscope_engine::session::{
    CaptureSpec, Conditioning, NoiseSource, SamplingSession, SessionError, SessionSettings,
};
use stepscope_tests::{fixture, max_abs_diff};

const TOLERANCE: f32 = 1e-4;

struct Run {
    tensors: HashMap<String, Tensor>,
    session: SamplingSession,
}

fn squeeze(t: &Tensor) -> Tensor {
    t.squeeze(0).unwrap()
}

fn open_run(file: &str, model_dir: &str, settings: SessionSettings, with_condition: bool) -> Run {
    let tensors = candle_core::safetensors::load(fixture(&format!("parity/{file}")), &Device::Cpu).unwrap();
    let model = Arc::new(
        WanTransformer::load(&fixture(&format!("parity/{model_dir}")), DType::F32, &Device::Cpu).unwrap(),
    );
    let conditioning = Conditioning {
        prompt_embeds: tensors["prompt_embeds"].clone(),
        negative_prompt_embeds: tensors.get("negative_prompt_embeds").cloned(),
        condition_latent: with_condition.then(|| squeeze(&tensors["condition"])),
    };
    let noise = squeeze(&tensors["noise"]);
    let shape: [usize; 4] = noise.dims().try_into().unwrap();
    let session =
        SamplingSession::new(model, Arc::new(conditioning), settings, shape, &NoiseSource::Given(noise))
            .unwrap();
    Run { tensors, session }
}

fn check(run: &Run, name: &str, ours: &Tensor) -> f32 {
    let err = max_abs_diff(ours, &squeeze(&run.tensors[name]));
    assert!(err < TOLERANCE, "{name}: max abs error {err} exceeds {TOLERANCE}");
    err
}

fn check_schedule(run: &Run) {
    let schedule = run.session.solver().schedule();
    let sigmas: Vec<f32> = run.tensors["sigmas"].to_dtype(DType::F32).unwrap().to_vec1().unwrap();
    let timesteps: Vec<f32> = run.tensors["timesteps"].to_dtype(DType::F32).unwrap().to_vec1().unwrap();
    for (ours, theirs) in schedule.sigmas.iter().zip(&sigmas) {
        assert!((*ours as f32 - theirs).abs() < 1e-6, "sigma {ours} vs {theirs}");
    }
    for (ours, theirs) in schedule.timesteps.iter().zip(&timesteps) {
        assert!((*ours as f32 - theirs).abs() < 1e-3, "timestep {ours} vs {theirs}");
    }
}

fn run_and_compare(mut run: Run, steps: usize) {
    check_schedule(&run);
    let mut worst = 0f32;
    for step_idx in 0..steps {
        let record = run.session.step().unwrap();
        assert_eq!(record.step_idx, step_idx);
        worst = worst.max(check(&run, &format!("k{step_idx}/latents"), &record.latents));
        worst = worst.max(check(&run, &format!("k{step_idx}/velocity"), &record.velocity));
        worst = worst.max(check(&run, &format!("k{step_idx}/x0"), &record.x0));
    }
    assert!(run.session.is_finished());
    worst = worst.max(check(&run, "final/latents", &run.session.latents().unwrap()));
    println!("worst max abs error over the run: {worst:.2e}");
    assert!(matches!(run.session.step(), Err(SessionError::Finished { .. })));
}

fn t2v_settings() -> SessionSettings {
    SessionSettings {
        steps: 6,
        shift: 3.0,
        scheduler: SchedulerKind::UniPc,
        guidance_scale: 4.0,
        capture: CaptureSpec::default(),
    }
}

fn ti2v_settings() -> SessionSettings {
    SessionSettings {
        steps: 5,
        shift: 5.0,
        scheduler: SchedulerKind::Euler,
        guidance_scale: 1.0,
        capture: CaptureSpec::default(),
    }
}

#[test]
fn t2v_unipc_with_guidance_matches_the_diffusers_loop() {
    run_and_compare(open_run("sample_t2v_unipc.safetensors", "t2v_hd20", t2v_settings(), false), 6);
}

#[test]
fn ti2v_euler_with_a_clean_first_frame_matches_the_diffusers_loop() {
    run_and_compare(open_run("sample_ti2v_euler.safetensors", "ti2v_hd24", ti2v_settings(), true), 5);
}

#[test]
fn captures_do_not_change_the_run() {
    let mut settings = t2v_settings();
    settings.capture = "decoded,token_norm,pca3@all;self_attn,cross_attn@1:q=0,5".parse().unwrap();
    let mut run = open_run("sample_t2v_unipc.safetensors", "t2v_hd20", settings, false);
    let record = run.session.step().unwrap();
    check(&run, "k0/velocity", &record.velocity);
    assert_eq!(record.layers.len(), 2);
    let layer1 = &record.layers[1];
    let shapes: Vec<(String, Vec<usize>)> =
        layer1.tensors.iter().map(|(kind, t)| (kind.to_string(), t.dims().to_vec())).collect();
    assert_eq!(
        shapes,
        vec![
            ("decoded".to_owned(), vec![4, 3, 8, 8]),
            ("token_norm".to_owned(), vec![3, 4, 4]),
            ("pca3".to_owned(), vec![3, 3, 4, 4]),
            ("self_attn".to_owned(), vec![2, 2, 48]),
            ("cross_attn".to_owned(), vec![2, 2, 7]),
        ]
    );
}

#[test]
fn a_fork_continues_exactly_like_the_original() {
    let mut run = open_run("sample_t2v_unipc.safetensors", "t2v_hd20", t2v_settings(), false);
    run.session.step().unwrap();
    run.session.step().unwrap();
    let mut fork = run.session.fork_with_latents(&run.session.latents().unwrap()).unwrap();
    for _ in 2..6 {
        let a = run.session.step().unwrap();
        let b = fork.step().unwrap();
        assert_eq!(max_abs_diff(&a.x0, &b.x0), 0.0);
    }
    assert_eq!(max_abs_diff(&run.session.latents().unwrap(), &fork.latents().unwrap()), 0.0);
}

#[test]
fn a_renoised_fork_diverges_and_a_cancelled_session_stops() {
    let mut run = open_run("sample_t2v_unipc.safetensors", "t2v_hd20", t2v_settings(), false);
    let record = run.session.step().unwrap();
    let mut fork = run.session.fork_renoised(Some(&record.x0), 1234).unwrap();
    let original = run.session.step().unwrap();
    let forked = fork.step().unwrap();
    assert!(max_abs_diff(&original.x0, &forked.x0) > 1e-3);
    run.session.cancel_token().cancel();
    assert!(matches!(run.session.step(), Err(SessionError::Cancelled { step_idx: 2 })));
    // The fork has its own token.
    fork.step().unwrap();
}

#[test]
fn guidance_without_negative_embeddings_is_refused() {
    let tensors =
        candle_core::safetensors::load(fixture("parity/sample_t2v_unipc.safetensors"), &Device::Cpu).unwrap();
    let model =
        Arc::new(WanTransformer::load(&fixture("parity/t2v_hd20"), DType::F32, &Device::Cpu).unwrap());
    let conditioning = Conditioning {
        prompt_embeds: tensors["prompt_embeds"].clone(),
        negative_prompt_embeds: None,
        condition_latent: None,
    };
    let err = SamplingSession::new(
        model,
        Arc::new(conditioning),
        t2v_settings(),
        [4, 3, 8, 8],
        &NoiseSource::Seed(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("negative prompt embeddings"), "{err}");
}

/// The per-layer clean-video prediction `x_t - sigma * v_l` at the last layer is the sampler's
/// `x0_hat` (the head applied to the last block's output is the model's velocity), with
/// classifier-free guidance (both passes combined) and without, at every step.
/// Tolerance: 1e-5 absolute (f32).
#[test]
fn the_last_layers_x0_prediction_is_x0_hat_with_and_without_guidance() {
    for guidance_scale in [4.0, 1.0] {
        let mut settings = t2v_settings();
        settings.guidance_scale = guidance_scale;
        settings.capture = "x0@all".parse().unwrap();
        let mut run = open_run("sample_t2v_unipc.safetensors", "t2v_hd20", settings, false);
        let last_layer = run.session.model().num_layers() - 1;
        let mut earlier_layer_differs = false;
        for _ in 0..6 {
            let record = run.session.step().unwrap();
            let x0_of = |layer_idx: usize| {
                let layer = record.layers.iter().find(|layer| layer.layer_idx == layer_idx).unwrap();
                layer.tensors.iter().find(|(kind, _)| kind.as_str() == "x0").unwrap().1.clone()
            };
            let err = max_abs_diff(&x0_of(last_layer), &record.x0);
            assert!(err <= 1e-5, "guidance {guidance_scale}, step {}: max abs error {err}", record.step_idx);
            earlier_layer_differs |= max_abs_diff(&x0_of(0), &record.x0) > 1e-3;
        }
        assert!(earlier_layer_differs, "layer 0's prediction should differ from x0_hat somewhere");
    }
}
