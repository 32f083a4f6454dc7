//! The candle Wan transformer against diffusers' `WanTransformer3DModel` on tiny random models.
//!
//! Fixtures come from `tests/reference/generate_parity.py` (diffusers 0.42.1, torch 2.15, f32):
//! every parameter re-drawn at random so no identity weight hides a bug, and every intermediate
//! saved. Tolerance: 1e-4 absolute in f32 for every tensor.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
#![allow(clippy::float_cmp, reason = "some checks demand bit-identical results")]
use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};
use stepscope_engine::model::{ForwardInput, ForwardProbe, WanTransformer};
use stepscope_tests::{fixture, max_abs_diff};

const TOLERANCE: f32 = 1e-4;

struct Case {
    model: WanTransformer,
    tensors: HashMap<String, Tensor>,
}

impl Case {
    fn load(model_dir: &str, case_file: &str) -> Self {
        let dir = fixture(&format!("parity/{model_dir}"));
        let model = WanTransformer::load(&dir, DType::F32, &Device::Cpu).unwrap();
        let tensors = candle_core::safetensors::load(dir.join(case_file), &Device::Cpu).unwrap();
        Self { model, tensors }
    }

    fn get(&self, name: &str) -> &Tensor {
        self.tensors.get(name).unwrap_or_else(|| panic!("fixture has no `{name}`"))
    }

    /// Asserts `ours` matches the fixture tensor `name` (after reshaping ours to its shape).
    fn check(&self, name: &str, ours: &Tensor) -> f32 {
        let reference = self.get(name);
        let ours = ours.reshape(reference.shape()).unwrap();
        let err = max_abs_diff(&ours, reference);
        println!("{name}: max abs error {err:.2e}");
        assert!(err < TOLERANCE, "{name}: max abs error {err} exceeds {TOLERANCE}");
        err
    }
}

fn check_whole_case(model_dir: &str, case_file: &str) {
    let case = Case::load(model_dir, case_file);
    let model = &case.model;
    let latents = case.get("hidden_states");
    let timesteps = case.get("timestep");
    let text_embeds = case.get("encoder_hidden_states");

    case.check("patch_tokens", &model.embed_patches(latents).unwrap());
    let time = model.embed_time(timesteps).unwrap();
    case.check("temb", &time.temb);
    case.check("timestep_proj", &time.modulation);
    case.check("text_tokens", &model.embed_text(text_embeds).unwrap());

    // diffusers stores each rotary angle twice (interleaved pairs); ours once per pair.
    let grid = model.grid(latents).unwrap();
    let angles = model.rope_angles(grid).unwrap();
    let every_other = |t: &Tensor| {
        let (b, n, one, d) = t.dims4().unwrap();
        t.reshape((b, n, one, d / 2, 2)).unwrap().narrow(4, 0, 1).unwrap().squeeze(4).unwrap()
    };
    let reference_cos = every_other(case.get("rope_cos"));
    let reference_sin = every_other(case.get("rope_sin"));
    assert!(max_abs_diff(&angles.cos.reshape(reference_cos.shape()).unwrap(), &reference_cos) < 1e-6);
    assert!(max_abs_diff(&angles.sin.reshape(reference_sin.shape()).unwrap(), &reference_sin) < 1e-6);

    let layers: Vec<usize> = (0..model.num_layers()).collect();
    let probe = ForwardProbe {
        hidden_layers: layers.clone(),
        attention_layers: layers,
        query_tokens: (0..grid.len() as u32).collect(),
        skip_layers: Vec::new(),
    };
    let input = ForwardInput { latents, timesteps, text_embeds };
    let out = model.forward(&input, &probe).unwrap();
    for trace in &out.layers {
        let i = trace.layer_idx;
        case.check(&format!("block{i}_out"), trace.hidden.as_ref().unwrap());
        let self_probs = trace.self_attn_probs.as_ref().unwrap();
        case.check(&format!("block{i}_self_attn_probs"), self_probs);
        case.check(&format!("block{i}_cross_attn_probs"), trace.cross_attn_probs.as_ref().unwrap());
        // Probabilities are rows of a softmax.
        let row_sums = self_probs.sum(D::Minus1).unwrap();
        assert!(max_abs_diff(&row_sums, &row_sums.ones_like().unwrap()) < 1e-5);
    }
    case.check("output", &out.velocity);
}

#[test]
fn t2v_head_dim_20_matches_diffusers() {
    check_whole_case("t2v_hd20", "case.safetensors");
}

#[test]
fn t2v_on_a_non_square_grid_matches_diffusers() {
    check_whole_case("t2v_hd20", "case_rect.safetensors");
}

#[test]
fn ti2v_per_token_timesteps_match_diffusers() {
    check_whole_case("ti2v_hd24", "case.safetensors");
}

#[test]
fn probing_changes_nothing_in_the_output_and_a_skipped_block_passes_its_input_on() {
    let case = Case::load("t2v_hd20", "case.safetensors");
    let input = ForwardInput {
        latents: case.get("hidden_states"),
        timesteps: case.get("timestep"),
        text_embeds: case.get("encoder_hidden_states"),
    };
    let plain = case.model.forward(&input, &ForwardProbe::default()).unwrap();
    assert!(plain.layers.is_empty());
    let probed = ForwardProbe {
        hidden_layers: vec![1],
        attention_layers: vec![0],
        query_tokens: vec![3, 40],
        ..ForwardProbe::default()
    };
    let out = case.model.forward(&input, &probed).unwrap();
    assert_eq!(max_abs_diff(&plain.velocity, &out.velocity), 0.0);
    // Skipping block 1 hands block 0's output straight on, and changes the prediction; a
    // skipped block still reports the attention it would have had.
    let skipped = ForwardProbe {
        hidden_layers: vec![0, 1],
        attention_layers: vec![1],
        query_tokens: vec![3],
        skip_layers: vec![1],
    };
    let ablated = case.model.forward(&input, &skipped).unwrap();
    let (before, after) = (&ablated.layers[0], &ablated.layers[1]);
    assert_eq!(max_abs_diff(before.hidden.as_ref().unwrap(), after.hidden.as_ref().unwrap()), 0.0);
    assert!(after.self_attn_probs.is_some());
    assert!(max_abs_diff(&plain.velocity, &ablated.velocity) > 1e-4);
    let probs = out.layers[0].self_attn_probs.as_ref().unwrap();
    assert_eq!(probs.dims(), &[1, 2, 2, 48]);
    let all = case.get("block0_self_attn_probs").narrow(2, 3, 1).unwrap();
    assert!(max_abs_diff(&probs.narrow(2, 0, 1).unwrap(), &all) < TOLERANCE);
}

#[test]
fn the_head_decodes_the_last_block_into_the_output() {
    // The logit-lens decode of the last layer must be the model's own output.
    let case = Case::load("ti2v_hd24", "case.safetensors");
    let input = ForwardInput {
        latents: case.get("hidden_states"),
        timesteps: case.get("timestep"),
        text_embeds: case.get("encoder_hidden_states"),
    };
    let last = case.model.num_layers() - 1;
    let probe = ForwardProbe { hidden_layers: vec![last], ..ForwardProbe::default() };
    let out = case.model.forward(&input, &probe).unwrap();
    let decoded = case.model.head(out.layers[0].hidden.as_ref().unwrap(), &out.temb, out.grid).unwrap();
    assert_eq!(max_abs_diff(&decoded, &out.velocity), 0.0);
}
