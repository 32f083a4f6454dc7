//! `stepscope memory`: what a Wan model needs in memory at a latent size, from its config alone
//! (nothing is loaded): exact weights, estimated activations, and what this machine has free.

use anyhow::{Context, Result, bail};
use stepscope_engine::model::memory::{available_memory_bytes, gib};
use stepscope_engine::model::{WanConfig, estimate_memory};
use stepscope_engine::pipeline::{PipelineFolder, estimate_pipeline};

use crate::cli::MemoryArgs;

/// `memory --pipeline DIR`: each part, and the peak (the encoder alone, then the transformer
/// and the VAE together).
fn run_pipeline(dir: &std::path::Path, args: &MemoryArgs) -> Result<()> {
    let folder = PipelineFolder::open(dir)?;
    let dtype = crate::record::compute_dtype(args.dtype);
    let memory = estimate_pipeline(&folder, dtype, args.size, args.text_len)?;
    let [frames, height, width] = args.size;
    println!(
        "{} in {dtype:?}, latent {frames}x{height}x{width}, prompts of {} tokens:",
        dir.display(),
        args.text_len
    );
    let row = |part: &str, parameters: u64, weights: u64, activations: u64| {
        println!(
            "  {part:<12} {parameters:>15} parameters, weights {}, working memory about {}",
            gib(weights),
            gib(activations)
        );
    };
    row(
        "text encoder",
        memory.encoder.parameters,
        memory.encoder.weight_bytes,
        memory.encoder.activation_bytes,
    );
    let transformer = &memory.transformer;
    row("transformer", transformer.parameters, transformer.weight_bytes, transformer.activation_bytes);
    if let Some(expert) = &memory.low_noise_expert {
        row("transformer_2", expert.parameters, expert.weight_bytes, expert.activation_bytes);
    }
    match &memory.vae {
        Some(vae) => row("VAE decoder", vae.parameters, vae.weight_bytes, vae.activation_bytes),
        None => println!("  VAE decoder  (no weights file to count)"),
    }
    let available = available_memory_bytes().map_or_else(|| "unknown".to_owned(), gib);
    println!(
        "peak: about {} (the encoder is freed before the transformer loads; available on this machine now: {available})",
        gib(memory.peak_bytes())
    );
    Ok(())
}

pub fn run(args: &MemoryArgs) -> Result<()> {
    if let Some(dir) = &args.pipeline {
        return run_pipeline(dir, args);
    }
    let config_path = match (&args.config, &args.model) {
        (Some(config), _) if config.is_dir() => bail!(
            "{} is a folder: pass a model folder as --model, or give --config its config.json",
            config.display()
        ),
        (Some(config), _) => config.clone(),
        (None, Some(dir)) => dir.join("config.json"),
        (None, None) => bail!("give --model DIR, --config FILE or --pipeline DIR"),
    };
    let config = WanConfig::from_file(&config_path)?;
    let [frames, height, width] = args.size;
    let shape = [config.in_channels, frames, height, width];
    let dtype = crate::record::compute_dtype(args.dtype);
    let estimate = estimate_memory(&config, dtype, shape, args.per_token_timesteps)
        .with_context(|| format!("--size {frames}x{height}x{width}"))?;
    println!(
        "{}: {} layers, width {} ({} heads x {}), FFN {}",
        config_path.display(),
        config.num_layers,
        config.inner_dim(),
        config.num_attention_heads,
        config.attention_head_dim,
        config.ffn_dim
    );
    println!("parameters: {}", estimate.parameters);
    println!("weights in {dtype:?}: {}", gib(estimate.weight_bytes));
    println!(
        "latent {shape:?}: {} tokens; activations of one forward pass: about {}",
        estimate.tokens,
        gib(estimate.activation_bytes)
    );
    let available = available_memory_bytes().map_or_else(|| "unknown".to_owned(), gib);
    println!("total: about {} (available on this machine now: {available})", gib(estimate.total_bytes()));
    Ok(())
}
