//! `stepscope memory`: what a Wan model needs in memory at a latent size, from its config alone
//! (nothing is loaded): exact weights, estimated activations, and what this machine has free.

use anyhow::{Context, Result, bail};
use stepscope_engine::model::memory::{available_memory_bytes, gib};
use stepscope_engine::model::{WanConfig, estimate_memory};

use crate::cli::MemoryArgs;

pub fn run(args: &MemoryArgs) -> Result<()> {
    let config_path = match (&args.config, &args.model) {
        (Some(config), _) if config.is_dir() => bail!(
            "{} is a folder: pass a model folder as --model, or give --config its config.json",
            config.display()
        ),
        (Some(config), _) => config.clone(),
        (None, Some(dir)) => dir.join("config.json"),
        (None, None) => unreachable!("clap requires --model or --config"),
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
