//! The UMT5 text encoder and the prompt embeddings against transformers and diffusers, on the
//! tiny random encoder and tokenizer `tests/reference/umt5_fixture.py` made (now in the tiny
//! pipeline folder `fixtures/wan_pipeline_tiny`) (5 prompts: cleaning
//! of HTML entities and white space, an empty prompt, one cut at the maximum length):
//! the tokenizer's ids and mask exactly, the encoder's last hidden state and the pipeline's
//! `_get_t5_prompt_embeds` within 1e-4 (f32).
#![allow(clippy::unwrap_used, reason = "test: a failed unwrap is a failed test")]

use candle_core::{DType, Device, Tensor};
use stepscope_engine::text::{PromptEncoder, PromptTokens};
use stepscope_tests::{fixture, max_abs_diff};

const TOLERANCE: f32 = 1e-4;

struct Expected {
    prompts: Vec<String>,
    max_length: usize,
    tensors: std::collections::HashMap<String, Tensor>,
}

fn expected() -> Expected {
    let path = fixture("umt5_tiny/expected.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = metadata.metadata().clone().unwrap();
    let prompts = serde_json::from_str(&metadata["prompts"]).unwrap();
    let max_length = metadata["max_length"].parse().unwrap();
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    Expected { prompts, max_length, tensors }
}

fn encoder() -> PromptEncoder {
    PromptEncoder::load(
        &fixture("wan_pipeline_tiny/tokenizer"),
        &fixture("wan_pipeline_tiny/text_encoder"),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap()
}

fn as_u32(tensor: &Tensor) -> Vec<u32> {
    tensor.to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap().into_iter().map(|v| v as u32).collect()
}

#[test]
fn tokens_are_the_pipeline_tokenizers() {
    let (expected, encoder) = (expected(), encoder());
    for (idx, prompt) in expected.prompts.iter().enumerate() {
        let tokens = encoder.tokenize(prompt, expected.max_length).unwrap();
        let want = PromptTokens {
            ids: as_u32(&expected.tensors[&format!("ids_{idx}")]),
            mask: as_u32(&expected.tensors[&format!("mask_{idx}")]),
        };
        assert_eq!(tokens, want, "prompt {idx}: {prompt:?}");
    }
    // The empty prompt is `</s>` alone; the long one fills every position.
    assert_eq!(encoder.tokenize("", expected.max_length).unwrap().len(), 1);
    assert_eq!(
        encoder.tokenize(&expected.prompts[3], expected.max_length).unwrap().len(),
        expected.max_length
    );
}

#[test]
fn hidden_states_and_prompt_embeddings_match_transformers_and_diffusers() {
    let (expected, encoder) = (expected(), encoder());
    for (idx, prompt) in expected.prompts.iter().enumerate() {
        let tokens = encoder.tokenize(prompt, expected.max_length).unwrap();
        let hidden = encoder.hidden_states(&tokens).unwrap().squeeze(0).unwrap();
        let hidden_error = max_abs_diff(&hidden, &expected.tensors[&format!("hidden_{idx}")]);
        assert!(
            hidden_error <= TOLERANCE,
            "prompt {idx}: hidden states differ by {hidden_error} (tolerance {TOLERANCE})"
        );
        let embeds = encoder.encode(prompt, expected.max_length).unwrap().squeeze(0).unwrap();
        let error = max_abs_diff(&embeds, &expected.tensors[&format!("embeds_{idx}")]);
        assert!(error <= TOLERANCE, "prompt {idx}: embeddings differ by {error} (tolerance {TOLERANCE})");
        println!(
            "prompt {idx}: {} tokens, max |error| hidden {hidden_error:.1e}, embeddings {error:.1e}",
            tokens.len()
        );
        // Zero past the prompt, exactly.
        let length = tokens.len();
        let tail = embeds.narrow(0, length, expected.max_length - length).unwrap();
        let nonzero =
            tail.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().filter(|v| **v != 0.0).count();
        assert_eq!(nonzero, 0, "prompt {idx}: values past the prompt");
    }
}

#[test]
fn a_tokenizer_that_does_not_belong_to_the_encoder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let encoder_dir = dir.path().join("text_encoder");
    std::fs::create_dir(&encoder_dir).unwrap();
    std::fs::copy(
        fixture("wan_pipeline_tiny/text_encoder/model.safetensors"),
        encoder_dir.join("model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("wan_pipeline_tiny/text_encoder/config.json")).unwrap(),
    )
    .unwrap();
    config["vocab_size"] = 10.into();
    std::fs::write(encoder_dir.join("config.json"), config.to_string()).unwrap();
    let err =
        PromptEncoder::load(&fixture("wan_pipeline_tiny/tokenizer"), &encoder_dir, DType::F32, &Device::Cpu)
            .unwrap_err()
            .to_string();
    assert!(err.contains("do not belong together") && err.contains("tokenizer.json"), "{err}");
    let missing =
        PromptEncoder::load(dir.path(), &encoder_dir, DType::F32, &Device::Cpu).unwrap_err().to_string();
    assert!(missing.contains("tokenizer.json") && missing.contains("cannot read the tokenizer"), "{missing}");
}
