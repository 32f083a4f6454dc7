//! Malformed model directories: each gives one clear error naming the problem, never a panic.
#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use stepscope_engine::model::{ModelError, WanTransformer};
use stepscope_tests::fixture;

const WEIGHTS: &str = "diffusion_pytorch_model.safetensors";

/// A writable copy of the tiny parity model.
fn model_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for file in ["config.json", WEIGHTS] {
        std::fs::copy(fixture("parity/t2v_hd20").join(file), model.join(file)).unwrap();
    }
    (dir, model)
}

fn load_err(dir: &Path) -> String {
    match WanTransformer::load(dir, DType::F32, &Device::Cpu) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(err) => err.to_string(),
    }
}

fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join(WEIGHTS);
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
}

#[test]
fn a_missing_directory_or_config_is_named() {
    let (_tmp, model) = model_copy();
    assert!(load_err(&model.join("nope")).contains("is not a directory"));
    std::fs::remove_file(model.join("config.json")).unwrap();
    assert!(load_err(&model).contains("has no config.json"));
}

#[test]
fn a_config_that_is_not_json_is_named() {
    let (_tmp, model) = model_copy();
    std::fs::write(model.join("config.json"), "{ \"num_layers\": ").unwrap();
    let err = load_err(&model);
    assert!(err.contains("config.json") && err.contains("not valid diffusers JSON"), "{err}");
    // A config with sizes missing is refused, not filled with the 14B defaults.
    std::fs::write(model.join("config.json"), r#"{"num_layers": 0}"#).unwrap();
    let err = load_err(&model);
    assert!(err.contains("has no `patch_size`"), "{err}");
    // A complete config with a zero size names it.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("parity/t2v_hd20/config.json")).unwrap())
            .unwrap();
    config["num_layers"] = 0.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    assert!(load_err(&model).contains("num_layers must be positive"));
    // And one far beyond any Wan model fails in the config's check, before any table is built.
    config["num_layers"] = 1_000_000_000_u64.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    let err = load_err(&model);
    assert!(err.contains("num_layers is 1000000000, above the limit of 512"), "{err}");
}

#[test]
fn missing_weights_are_named() {
    let (_tmp, model) = model_copy();
    std::fs::remove_file(model.join(WEIGHTS)).unwrap();
    assert!(load_err(&model).contains("has neither"));
}

#[test]
fn a_truncated_weights_file_names_the_file() {
    let (_tmp, model) = model_copy();
    let path = model.join(WEIGHTS);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&model);
    assert!(err.contains(WEIGHTS) && err.contains("cannot open the weights"), "{err}");
    std::fs::write(&path, &bytes[..4]).unwrap();
    assert!(load_err(&model).contains(WEIGHTS));
}

#[test]
fn a_missing_key_is_named_with_its_expected_shape() {
    let (_tmp, model) = model_copy();
    rewrite_weights(&model, |t| {
        t.remove("blocks.1.attn2.norm_k.weight");
    });
    let err = WanTransformer::load(&model, DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::MissingTensor { .. }));
    assert_eq!(
        err.to_string(),
        "checkpoint is missing tensor `blocks.1.attn2.norm_k.weight` (expected shape [40])"
    );
}

#[test]
fn a_misshaped_key_is_named_with_both_shapes() {
    let (_tmp, model) = model_copy();
    rewrite_weights(&model, |t| {
        t.insert(
            "blocks.0.ffn.net.2.weight".into(),
            Tensor::zeros((40, 63), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert_eq!(
        load_err(&model),
        "checkpoint tensor `blocks.0.ffn.net.2.weight` has shape [40, 63], the config implies [40, 64]"
    );
}

#[test]
fn an_integer_weight_is_refused() {
    let (_tmp, model) = model_copy();
    rewrite_weights(&model, |t| {
        t.insert("proj_out.bias".into(), Tensor::zeros(16, DType::U32, &Device::Cpu).unwrap());
    });
    assert!(load_err(&model).contains("`proj_out.bias` has dtype U32"));
}

#[test]
fn sharded_checkpoints_load_and_bad_indexes_are_named() {
    let (_tmp, model) = model_copy();
    // Split the weights in two shards with an index, as diffusers does for large models.
    let tensors = candle_core::safetensors::load(model.join(WEIGHTS), &Device::Cpu).unwrap();
    std::fs::remove_file(model.join(WEIGHTS)).unwrap();
    let (mut first, mut second) = (HashMap::new(), HashMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, (name, tensor)) in tensors.into_iter().enumerate() {
        let (shard, file) =
            if i % 2 == 0 { (&mut first, "a.safetensors") } else { (&mut second, "b.safetensors") };
        weight_map.insert(name.clone(), file.into());
        shard.insert(name, tensor);
    }
    candle_core::safetensors::save(&first, model.join("a.safetensors")).unwrap();
    candle_core::safetensors::save(&second, model.join("b.safetensors")).unwrap();
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    let index_path = model.join(format!("{WEIGHTS}.index.json"));
    std::fs::write(&index_path, index.to_string()).unwrap();
    WanTransformer::load(&model, DType::F32, &Device::Cpu).unwrap();
    WanTransformer::load(&model, DType::BF16, &Device::Cpu).unwrap();

    std::fs::remove_file(model.join("b.safetensors")).unwrap();
    assert!(load_err(&model).contains("names") && load_err(&model).contains("b.safetensors"));
    std::fs::write(&index_path, r#"{"weight_map": {"x": "../escape.safetensors"}}"#).unwrap();
    assert!(load_err(&model).contains("outside the folder"));
    std::fs::write(&index_path, "[]").unwrap();
    assert!(load_err(&model).contains("not valid"));
}

#[test]
fn half_precision_loads_and_stays_close_to_f32() {
    let dir = fixture("parity/t2v_hd20");
    let case = candle_core::safetensors::load(dir.join("case.safetensors"), &Device::Cpu).unwrap();
    let input = stepscope_engine::model::ForwardInput {
        latents: &case["hidden_states"],
        timesteps: &case["timestep"],
        text_embeds: &case["encoder_hidden_states"],
    };
    let probe = stepscope_engine::model::ForwardProbe::default();
    for (dtype, tolerance) in [(DType::F16, 2e-2), (DType::BF16, 1e-1)] {
        let model = WanTransformer::load(&dir, dtype, &Device::Cpu).unwrap();
        let out = model.forward(&input, &probe).unwrap();
        let err = stepscope_tests::max_abs_diff(&out.velocity, &case["output"]);
        println!("{dtype:?}: max abs error {err:.2e}");
        assert!(err < tolerance, "{dtype:?}: {err} exceeds {tolerance}");
    }
}

/// A model whose block 1 has NaN weights: the first step stops with an error naming the step,
/// the tensor and (with the blocks' outputs captured) the first block that went non-finite,
/// instead of recording a trajectory of NaN; the session does not move past the step.
#[test]
fn nan_weights_stop_the_run_at_the_first_step_naming_the_block() {
    use std::sync::Arc;

    use stepscope_engine::scheduler::SchedulerKind;
    use stepscope_engine::session::{
        Conditioning, NoiseSource, SamplingSession, SessionError, SessionSettings,
    };

    let (_dir, model_dir) = model_copy();
    rewrite_weights(&model_dir, |tensors| {
        let weight = &tensors["blocks.1.ffn.net.2.bias"];
        let nan = Tensor::full(f32::NAN, weight.dims(), &Device::Cpu).unwrap();
        tensors.insert("blocks.1.ffn.net.2.bias".to_owned(), nan);
    });
    let model = Arc::new(WanTransformer::load(&model_dir, DType::F32, &Device::Cpu).unwrap());
    let inputs =
        candle_core::safetensors::load(fixture("parity/sample_t2v_unipc.safetensors"), &Device::Cpu).unwrap();
    let conditioning = Conditioning {
        prompt_embeds: inputs["prompt_embeds"].clone(),
        negative_prompt_embeds: inputs.get("negative_prompt_embeds").cloned(),
        condition_latent: None,
    };
    let noise = inputs["noise"].squeeze(0).unwrap();
    let shape: [usize; 4] = noise.dims().try_into().unwrap();
    for (capture, first_layer) in [("hidden@all", Some(1)), ("", None)] {
        let settings = SessionSettings {
            steps: 3,
            shift: 3.0,
            scheduler: SchedulerKind::UniPc,
            guidance_scale: 4.0,
            capture: capture.parse().unwrap(),
        };
        let mut session = SamplingSession::new(
            Arc::clone(&model),
            Arc::new(conditioning.clone()),
            settings,
            shape,
            &NoiseSource::Given(noise.clone()),
        )
        .unwrap();
        let err = session.step().expect_err("NaN weights must stop the run");
        let SessionError::NonFinite { step_idx, tensor, count, first_layer: found } = &err else {
            panic!("expected a non-finite error, got {err}");
        };
        assert_eq!((*step_idx, *tensor, *found), (0, "velocity", first_layer), "{err}");
        assert_eq!(*count, shape.iter().product::<usize>(), "every value is NaN: {err}");
        let message = err.to_string();
        assert!(message.starts_with("step 0: the velocity holds"), "{message}");
        assert_eq!(session.step_idx(), 0, "the step was not taken");
    }
}
