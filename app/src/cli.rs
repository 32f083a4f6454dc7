//! The command line.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use stepscope_engine::scheduler::SchedulerKind;

#[derive(Debug, Parser)]
#[command(
    name = "stepscope",
    version,
    about = "Step through the denoising trajectory of video diffusion transformers",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A trajectory file to open in the window (default: the built-in sample).
    pub file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Wan model step by step and record its trajectory to a file.
    Record(Box<RecordArgs>),
    /// Describe a trajectory file.
    Info(InfoArgs),
    /// Open the window on a live run of a model, stepped on demand.
    Live(LiveArgs),
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// A diffusers Wan transformer folder (config.json + safetensors weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]`.
    #[arg(long)]
    pub prompt_embeds: PathBuf,
    /// Random seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Latent size `FxHxW` (frames, height, width in latent units).
    #[arg(long, value_parser = parse_size)]
    pub size: [usize; 3],
    /// Number of denoising steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timestep shift.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// What to capture inside the network (`record --capture` syntax).
    #[arg(long, default_value = "decoded,token_norm,pca3@all")]
    pub capture: String,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A diffusers Wan transformer folder (config.json + safetensors weights).
    #[arg(long)]
    pub model: PathBuf,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]`.
    #[arg(long)]
    pub prompt_embeds: PathBuf,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]` for the negative prompt.
    #[arg(long)]
    pub negative_prompt_embeds: Option<PathBuf>,
    /// Classifier-free guidance scale (applies above 1; needs --negative-prompt-embeds).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub guidance: f64,
    /// Random seeds, one recorded run each (seed index = position).
    #[arg(long = "seed", num_args = 1.., conflicts_with = "noise", required_unless_present = "noise")]
    pub seeds: Vec<u64>,
    /// Safetensors file with the initial `noise` `[C, F, H, W]` (instead of --seed).
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// Latent size `FxHxW` (frames, height, width in latent units); needed with --seed.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<[usize; 3]>,
    /// Safetensors file with `condition_latent` `[C, F_c, H, W]`: clean first latent frames (TI2V).
    #[arg(long)]
    pub condition_latent: Option<PathBuf>,
    /// Number of denoising steps.
    #[arg(long)]
    pub steps: usize,
    /// Timestep shift (Wan: 3 at 480p, 5 at 720p).
    #[arg(long, allow_negative_numbers = true)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// What to capture inside the network, e.g. `decoded,token_norm,pca3@all;self_attn@3:q=0,17`.
    #[arg(long)]
    pub capture: Option<String>,
    /// Compute device: `cpu`, `cuda:N` (build with `--features cuda`) or `metal` (`--features metal`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Dtype the model computes in.
    #[arg(long, value_enum, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    /// Dtype tensors are stored in.
    #[arg(long, value_enum, default_value_t = StoreDtype::F32)]
    pub store: StoreDtype,
    /// Prompt text to note in the file (the embeddings are what the model sees).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Output trajectory file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A trajectory file.
    pub file: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ComputeDtype {
    F32,
    F16,
    Bf16,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StoreDtype {
    F32,
    F16,
}

fn parse_scheduler(text: &str) -> Result<SchedulerKind, String> {
    text.parse().map_err(|e: stepscope_engine::scheduler::SchedulerError| e.to_string())
}

fn parse_size(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split('x').collect();
    let parsed: Vec<usize> = parts
        .iter()
        .map(|p| p.parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{text}` is not FxHxW with positive numbers (e.g. 3x8x8)"))?;
    parsed.try_into().map_err(|_| format!("`{text}` is not FxHxW (e.g. 3x8x8)"))
}
