//! The Wan VAE decoders and encoders against diffusers' `AutoencoderKLWan.decode`, on the tiny pipeline
//! folder's random VAE (`tests/reference/wan_vae_fixture.py`): the last step's `x0_hat` of the
//! fixture run, three latent frames (so the causal cache carries over two chunks), decoded to
//! nine frames of 32 x 48, within 1e-4 (f32).
#![allow(clippy::unwrap_used, reason = "test: a failed unwrap is a failed test")]

use candle_core::{DType, Device};
use stepscope_engine::vae::{WanVae, WanVaeEncoding};
use stepscope_tests::{fixture, max_abs_diff};

const TOLERANCE: f32 = 1e-4;

#[test]
fn decoded_frames_match_diffusers() {
    let vae = WanVae::load(&fixture("wan_pipeline_tiny/vae"), DType::F32, &Device::Cpu).unwrap();
    let run = candle_core::safetensors::load(fixture("wan_pipeline_tiny/expected.safetensors"), &Device::Cpu)
        .unwrap();
    let expected =
        candle_core::safetensors::load(fixture("wan_pipeline_tiny/vae_expected.safetensors"), &Device::Cpu)
            .unwrap();
    let video = vae.decode_latents(&run["x0_3"]).unwrap();
    assert_eq!(video.dims(), [3, 9, 32, 48], "1 + 4 (3 - 1) frames, 8x the latent's size");
    let error = max_abs_diff(&video, &expected["video_3"]);
    println!("max |decoded - diffusers| {error:.1e}");
    assert!(
        error <= TOLERANCE,
        "the decoded video differs from diffusers by {error} (tolerance {TOLERANCE})"
    );
}

#[test]
fn latents_of_another_width_are_refused() {
    let vae = WanVae::load(&fixture("wan_pipeline_tiny/vae"), DType::F32, &Device::Cpu).unwrap();
    let latents = candle_core::Tensor::zeros((4, 2, 4, 6), DType::F32, &Device::Cpu).unwrap();
    let err = vae.decode_latents(&latents).unwrap_err().to_string();
    assert!(err.contains("latents of 4 channels, but the VAE takes 16"), "{err}");
}

/// Wan2.2's VAE (48 latent channels, residual up blocks with their repeat-and-fold shortcut,
/// patch size 2) against diffusers, on a tiny random one
/// (`tests/reference/wan22_vae_fixture.py`): three latent frames of 1 x 2 decode to nine frames
/// of 16 x 32 within 1e-4 (f32).
#[test]
fn wan22_decoded_frames_match_diffusers() {
    let vae = WanVae::load(&fixture("wan22_vae_tiny"), DType::F32, &Device::Cpu).unwrap();
    let expected =
        candle_core::safetensors::load(fixture("wan22_vae_tiny/expected.safetensors"), &Device::Cpu).unwrap();
    let video = vae.decode_latents(&expected["latents"]).unwrap();
    assert_eq!(video.dims(), [3, 9, 16, 32], "1 + 4 (3 - 1) frames, 16x the latent's size");
    let error = max_abs_diff(&video, &expected["video"]);
    println!("Wan2.2: max |decoded - diffusers| {error:.1e}");
    assert!(
        error <= TOLERANCE,
        "the decoded video differs from diffusers by {error} (tolerance {TOLERANCE})"
    );
}

/// The encoders against diffusers' `vae.encode(x).latent_dist.mode()`, normalised as the
/// image-to-video pipeline normalises its condition: a random nine-frame video (the first frame
/// alone, then two chunks of four through the causal cache and the time down-samplers) and a
/// one-frame image, for the Wan2.1 VAE (to 16 x 3 x 4 x 6) and the Wan2.2 one (patch-folded, to
/// 48 x 3 x 1 x 2), within 1e-4 (f32).
#[test]
fn encoded_latents_match_diffusers() {
    for (vae_dir, expected) in [
        ("wan_pipeline_tiny/vae", "wan_pipeline_tiny/vae_expected.safetensors"),
        ("wan22_vae_tiny", "wan22_vae_tiny/expected.safetensors"),
    ] {
        let encoding = WanVaeEncoding::load(&fixture(vae_dir), DType::F32, &Device::Cpu).unwrap();
        let expected = candle_core::safetensors::load(fixture(expected), &Device::Cpu).unwrap();
        for input in ["video", "image"] {
            let latents = encoding.encode_video(&expected[&format!("encode_{input}")]).unwrap();
            let reference = &expected[&format!("encoded_{input}")];
            assert_eq!(latents.dims(), reference.dims(), "{vae_dir}: {input}");
            let error = max_abs_diff(&latents, reference);
            println!("{vae_dir}: max |encoded {input} - diffusers| {error:.1e}");
            assert!(error <= TOLERANCE, "{vae_dir}: the {input}'s latents differ from diffusers by {error}");
        }
    }
}

#[test]
fn videos_the_encoder_cannot_take_are_refused() {
    let encoding = WanVaeEncoding::load(&fixture("wan_pipeline_tiny/vae"), DType::F32, &Device::Cpu).unwrap();
    let grey = candle_core::Tensor::zeros((1, 1, 32, 48), DType::F32, &Device::Cpu).unwrap();
    let err = encoding.encode_video(&grey).unwrap_err().to_string();
    assert!(err.contains("a video of 1 channels, but the VAE takes 3"), "{err}");
    let six_frames = candle_core::Tensor::zeros((3, 6, 32, 48), DType::F32, &Device::Cpu).unwrap();
    let err = encoding.encode_video(&six_frames).unwrap_err().to_string();
    assert!(err.contains("1 + 4k frames"), "{err}");
}

/// A bf16 VAE on the CPU computes in f32 (candle's CPU matmul has no bf16): it decodes, and
/// as the f32 one does.
#[test]
fn a_bf16_vae_on_the_cpu_decodes_in_f32() {
    let vae = WanVae::load(&fixture("wan_pipeline_tiny/vae"), DType::BF16, &Device::Cpu).unwrap();
    let run = candle_core::safetensors::load(fixture("wan_pipeline_tiny/expected.safetensors"), &Device::Cpu)
        .unwrap();
    let expected =
        candle_core::safetensors::load(fixture("wan_pipeline_tiny/vae_expected.safetensors"), &Device::Cpu)
            .unwrap();
    let error = max_abs_diff(&vae.decode_latents(&run["x0_3"]).unwrap(), &expected["video_3"]);
    assert!(error <= TOLERANCE, "the bf16-requested decode differs from diffusers by {error}");
}
