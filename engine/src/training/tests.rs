use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};

use super::batch::{flow_matching_loss, noise_batch};
use super::checkpoint::{MODEL_DIR, PROMPTS_FILE, load_prompts};
use super::config::{TaskMix, TrainConfig, pixel_wan};
use super::params::Parameters;
use super::trainer::Trainer;
use crate::model::{ForwardInput, ForwardProbe, WanTransformer};
use crate::session::noise::gaussian_noise;
use crate::tasks::TaskKind;

/// A recipe small enough to train a few steps in well under a second.
fn tiny_config() -> TrainConfig {
    let mut model = pixel_wan(2, 2, 12, 32, 8);
    model.freq_dim = 16;
    TrainConfig {
        model,
        prompt_tokens: 2,
        tasks: vec![
            TaskMix { task: "maze".to_owned(), min_size: 2, max_size: 3, frames: 3 },
            TaskMix { task: "gravity".to_owned(), min_size: 4, max_size: 4, frames: 2 },
        ],
        batch_size: 2,
        warmup_steps: 1,
        ema_decay: 0.9,
        ..TrainConfig::recipe(&[TaskKind::Maze])
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn the_noised_batch_keeps_frame_zero_clean_and_at_timestep_zero() {
    let device = Device::Cpu;
    let x0 = gaussian_noise(1, [2, 3, 3, 4, 4].as_slice(), &device).unwrap();
    let eps = gaussian_noise(2, [2, 3, 3, 4, 4].as_slice(), &device).unwrap();
    let batch = noise_batch(TaskKind::Maze, 2, &x0, &eps, &[0.25, 1.0]).unwrap();
    let frame0 = |t: &Tensor| t.narrow(2, 0, 1).unwrap();
    assert!(max_abs_diff(&frame0(&batch.latents), &frame0(&x0)) < 1e-7);
    // Sample 1 at sigma 1 is pure noise on the generated frames.
    let generated = |t: &Tensor| t.get(1).unwrap().narrow(1, 1, 2).unwrap();
    assert!(max_abs_diff(&generated(&batch.latents), &generated(&eps)) < 1e-6);
    let timesteps: Vec<Vec<f32>> = batch.timesteps.to_vec2().unwrap();
    assert_eq!(timesteps[0].len(), 12);
    assert_eq!(&timesteps[0][..4], &[0.0; 4]);
    assert_eq!(&timesteps[0][4..], &[250.0; 8]);
    assert_eq!(&timesteps[1][4..], &[1000.0; 8]);
    // The target is the velocity, and an exact prediction has zero loss even with frame 0 wrong.
    let exact = (&eps - &x0).unwrap();
    let mut perfect = exact.clone();
    perfect = perfect
        .slice_assign(
            &[0..2, 0..3, 0..1, 0..4, 0..4],
            &Tensor::ones((2, 3, 1, 4, 4), DType::F32, &device).unwrap(),
        )
        .unwrap();
    assert!(flow_matching_loss(&perfect, &batch).unwrap().to_scalar::<f32>().unwrap() < 1e-12);
}

#[test]
fn every_parameter_gets_a_gradient() {
    let config = tiny_config();
    let device = Device::Cpu;
    let params = Parameters::init(&config, &device).unwrap();
    let model = params.model(&config.model, &device).unwrap();
    let x0 = gaussian_noise(3, [1, 3, 2, 4, 4].as_slice(), &device).unwrap();
    let eps = gaussian_noise(4, [1, 3, 2, 4, 4].as_slice(), &device).unwrap();
    let batch = noise_batch(TaskKind::Maze, 1, &x0, &eps, &[0.5]).unwrap();
    let text = params.prompt("maze").unwrap().as_tensor().clone();
    let input = ForwardInput { latents: &batch.latents, timesteps: &batch.timesteps, text_embeds: &text };
    let out = model.forward(&input, &ForwardProbe::default()).unwrap();
    let grads = flow_matching_loss(&out.velocity, &batch).unwrap().backward().unwrap();
    for (key, var) in params.iter() {
        if key == "prompts.gravity" {
            continue; // not in this batch
        }
        let grad = grads.get(var).unwrap_or_else(|| panic!("no gradient for {key}"));
        let norm = grad.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm.is_finite() && norm > 0.0, "{key}: gradient norm {norm}");
    }
}

#[test]
fn a_trained_model_loads_in_the_engine_and_agrees_with_the_trainer() {
    let device = Device::Cpu;
    let mut trainer = Trainer::new(tiny_config(), &device).unwrap();
    for _ in 0..3 {
        trainer.step().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let model_dir = trainer.save(dir.path()).unwrap();
    assert_eq!(model_dir, dir.path().join(MODEL_DIR));
    let loaded = WanTransformer::load(&model_dir, DType::F32, &device).unwrap();
    let prompts = load_prompts(&model_dir.join(PROMPTS_FILE), &device).unwrap();
    assert_eq!(prompts.keys().collect::<Vec<_>>(), ["gravity", "maze"]);

    // The trainer's view of the exported (EMA) weights, with its differentiable kernels.
    let ema: BTreeMap<String, Tensor> = trainer.ema_weights().clone();
    let trainer_view = Parameters::from_tensors(trainer.config(), ema).unwrap();
    let trainer_model = trainer_view.model(&trainer.config().model, &device).unwrap();

    let x0 = gaussian_noise(5, [2, 3, 3, 8, 8].as_slice(), &device).unwrap();
    let eps = gaussian_noise(6, [2, 3, 3, 8, 8].as_slice(), &device).unwrap();
    let batch = noise_batch(TaskKind::Maze, 3, &x0, &eps, &[0.3, 0.8]).unwrap();
    let text = prompts["maze"].broadcast_as((2, 2, 8)).unwrap();
    let input = ForwardInput { latents: &batch.latents, timesteps: &batch.timesteps, text_embeds: &text };
    let engine_out = loaded.forward(&input, &ForwardProbe::default()).unwrap().velocity;
    let trainer_out = trainer_model.forward(&input, &ForwardProbe::default()).unwrap().velocity;
    let diff = max_abs_diff(&engine_out, &trainer_out);
    assert!(diff < 1e-4, "engine and trainer forwards differ by {diff}");
}

#[test]
fn a_resumed_run_continues_exactly() {
    let device = Device::Cpu;
    let mut trainer = Trainer::new(tiny_config(), &device).unwrap();
    for _ in 0..2 {
        trainer.step().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    trainer.save(dir.path()).unwrap();
    let continued: Vec<f32> = (0..2).map(|_| trainer.step().unwrap().loss).collect();

    let mut resumed = Trainer::resume(dir.path(), &device).unwrap();
    assert_eq!(resumed.step_idx(), 2);
    assert_eq!(resumed.samples(), 4);
    let replayed: Vec<f32> = (0..2).map(|_| resumed.step().unwrap().loss).collect();
    for (a, b) in continued.iter().zip(&replayed) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{continued:?} vs {replayed:?}");
    }
}
