//! The command line.
use crate::instances::InstanceSplit;
use std::path::PathBuf;
use stepscope::viewer::StepView;

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
    /// Trajectory files to open in the window, the last one shown and the others in its runs
    /// list, or a folder of them to open as a sweep table (default: a live maze session on the
    /// built-in model).
    pub files: Vec<PathBuf>,
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
    /// Train a small pixel-space Wan on the tasks (resumable; see training/README.md).
    Train(Box<TrainArgs>),
    /// Sample held-out task instances with a trained model and score them.
    Eval(EvalArgs),
    /// Write task instances (ground-truth videos) to a safetensors file.
    Generate(GenerateArgs),
    /// Fit linear probes per (step, layer) for the task's per-token answer.
    Probe(ProbeArgs),
    /// Solve rate of the training-free seed ensemble next to a single seed's.
    Ensemble(EnsembleArgs),
    /// Pictures of a trajectory: a contact sheet (steps x frames) or a GIF of the step sweep.
    Export(ExportArgs),
    /// How much memory a model needs for a latent size, from its config alone.
    Memory(MemoryArgs),
    /// Record a model solving a task instance (what `live` opens), headless, for one or more
    /// noise seeds.
    Solve(SolveArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["model", "config", "pipeline"])))]
pub struct MemoryArgs {
    /// A diffusers Wan transformer folder (only its config.json is read).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A diffusers Wan transformer config.json.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A whole Wan pipeline folder: the text encoder, the transformer and the VAE (configs and
    /// weight headers only are read).
    #[arg(long, conflicts_with_all = ["model", "config"])]
    pub pipeline: Option<PathBuf>,
    /// With --pipeline: the prompt length the text encoder runs at.
    #[arg(long, default_value_t = 512, requires = "pipeline")]
    pub text_len: usize,
    /// Latent size `FxHxW` (Wan2.1 at 480p, 81 frames: 21x60x104).
    #[arg(long, value_parser = parse_size, default_value = "21x60x104")]
    pub size: [usize; 3],
    /// Dtype the model computes in.
    #[arg(long, value_enum, default_value_t = ComputeDtype::Bf16)]
    pub dtype: ComputeDtype,
    /// Per-token timesteps (a clean first frame, Wan2.2 TI2V).
    #[arg(long)]
    pub per_token_timesteps: bool,
}

#[derive(Debug, Args)]
pub struct SolveArgs {
    #[command(flatten)]
    pub run: LiveArgs,
    /// Noise seeds recorded: --seed, --seed + 1, ... (one recorded run each).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Output trajectory file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["sheet", "gif"])))]
pub struct ExportArgs {
    /// A trajectory file.
    pub file: PathBuf,
    /// Write a contact sheet here (PNG): one row per step, one column per frame, as a figure
    /// (title, step and sigma per row, frame per column) unless `--bare`.
    #[arg(long, value_name = "PNG")]
    pub sheet: Option<PathBuf>,
    /// The contact sheet or heatmap alone, without title, labels or colour bar.
    #[arg(long)]
    pub bare: bool,
    /// Write the step sweep here (animated GIF): one animation frame per step.
    #[arg(long, value_name = "GIF")]
    pub gif: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: usize,
    /// The tensor drawn: x0 (the predicted clean video), xt (the noisy latent), velocity, or
    /// video (x0 decoded to pixels by the VAE, at the steps the file stores it).
    #[arg(long, default_value = "x0", value_parser = parse_view)]
    pub view: StepView,
    /// Steps, comma-separated (default: every step the seed holds).
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// One frame of the video only (a sheet of one column, a GIF of that frame); default: all.
    #[arg(long)]
    pub frame: Option<usize>,
    /// Output pixels per latent pixel.
    #[arg(long, default_value_t = 8)]
    pub scale: u32,
    /// Milliseconds per step in the GIF.
    #[arg(long, default_value_t = 250)]
    pub delay_ms: u32,
}

#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// A trained model folder; default: the built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, default_value = "maze")]
    pub task: String,
    /// Task sizes, comma-separated (maze: cells per side); default: the task's own (maze 5,
    /// the others 6).
    #[arg(long, value_delimiter = ',')]
    pub size: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Held-out instances per size.
    #[arg(long, default_value_t = 100)]
    pub instances: u64,
    /// The first seed looked at.
    #[arg(long, default_value_t = 0)]
    pub seed_offset: u64,
    /// `held-out`: distinct puzzles of the held-out split (one puzzle key in 16, never drawn by
    /// the trainers), passing over any the model's `training_stream.json` shows it trained on;
    /// `all`: seeds K .. K + N as they come (not held out).
    #[arg(long, value_enum, default_value = "held-out")]
    pub split: InstanceSplit,
    /// Seeds merged, K.
    #[arg(long, default_value_t = 4)]
    pub seeds: u64,
    /// Steps after which the seeds are pooled, M (latent-mean and x0-mean).
    #[arg(long, default_value_t = 5)]
    pub merge_steps: usize,
    /// How the seeds are pooled: `latent-mean` (the seeds' mean latent), `x0-mean` (each seed
    /// keeps its noise and takes the mean clean prediction), `best-of-k` (K seeds to the end,
    /// the one nearest the task's palette wins).
    #[arg(long, value_enum, default_value = "latent-mean")]
    pub method: PoolMethod,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3.0)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// A trained model folder (config.json, weights, prompts.safetensors); default: the
    /// built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, default_value = "maze")]
    pub task: String,
    /// Task size (maze: cells per side); default: the task's own (maze 5, the others 6).
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Instances the probes are fitted on.
    #[arg(long, default_value_t = 64)]
    pub instances: u64,
    /// Instances the accuracy is measured on (the ones after the fitting ones, other puzzles).
    #[arg(long, default_value_t = 32)]
    pub test_instances: u64,
    /// The first seed looked at.
    #[arg(long, default_value_t = 0)]
    pub seed_offset: u64,
    /// `held-out`: distinct puzzles of the held-out split (one puzzle key in 16, never drawn by
    /// the trainers), passing over any the model's `training_stream.json` shows it trained on;
    /// `all`: seeds K .. K + N as they come (not held out).
    #[arg(long, value_enum, default_value = "held-out")]
    pub split: InstanceSplit,
    /// The video frame whose tokens are probed (default: the last, where the answer is drawn).
    #[arg(long)]
    pub frame: Option<usize>,
    /// Ridge strength relative to the mean feature variance.
    #[arg(long, default_value_t = 1e-3)]
    pub ridge: f64,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3.0)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// The result file (safetensors: `accuracy`, `balanced_accuracy` `[steps, layers]`); at
    /// least one of it and --png.
    #[arg(short, long, required_unless_present = "png")]
    pub output: Option<PathBuf>,
    /// A PNG heatmap of the balanced accuracy (steps across, layers up; viridis over 0.5..1), as
    /// a figure (title, axes, colour bar) unless `--bare`.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// A PNG heatmap of the balanced accuracy minus the stronger baseline at each step (the
    /// layout alone, or the step's own `x0_hat` read linearly), viridis over -0.25..0.25.
    #[arg(long, value_name = "PNG")]
    pub baseline_png: Option<PathBuf>,
    /// The heatmap alone, without title, axes or colour bar.
    #[arg(long)]
    pub bare: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Task: `maze`, `symmetry`, `gravity`, `flood_fill`, `rotation`.
    #[arg(long, default_value = "maze")]
    pub task: String,
    /// Task size (maze: cells per side); default: the task's own (maze 5, the others 6).
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Seed of the first instance; the others follow it (training seeds have the top bit set).
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Number of instances.
    #[arg(long, default_value_t = 100)]
    pub count: u64,
    /// `none`: each seed's own puzzle; `train`: each seed draws a training puzzle, never one of the
    /// held-out split (what the trainers read).
    #[arg(long, default_value = "none", value_parser = ["none", "train"])]
    pub split: String,
    /// Output file: `videos` `[N, 3, F, H, W]` in `[-1, 1]`.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// A diffusers Wan transformer folder (config.json + safetensors weights); default: the
    /// built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A built-in task to solve (`maze`, `symmetry`, `gravity`, `flood_fill`, `rotation`): its
    /// puzzle is the first frame and the model's `prompts.safetensors` gives the prompt.
    /// Default: a maze, unless --prompt-embeds is given.
    #[arg(long, conflicts_with = "prompt_embeds")]
    pub task: Option<String>,
    /// The task's size in cells per side.
    #[arg(long, default_value_t = 5)]
    pub cells: usize,
    /// The task instance's seed.
    #[arg(long, default_value_t = 0)]
    pub instance: u64,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]` (a free run, no task).
    #[arg(long, requires = "size")]
    pub prompt_embeds: Option<PathBuf>,
    /// A diffusers Wan pipeline folder: a free run from the typed --prompt, encoded by its UMT5.
    #[arg(long, requires_all = ["size", "prompt"], conflicts_with_all = ["model", "task", "prompt_embeds"])]
    pub pipeline: Option<PathBuf>,
    /// The prompt of a --pipeline run.
    #[arg(long, requires = "pipeline")]
    pub prompt: Option<String>,
    /// The negative prompt of a --pipeline run (used with --guidance above 1).
    #[arg(long, requires = "pipeline", default_value = "")]
    pub negative_prompt: String,
    /// Classifier-free guidance of a --pipeline run.
    #[arg(long, requires = "pipeline", default_value_t = 1.0)]
    pub guidance: f64,
    /// The first frame of an image-to-video --pipeline run (Wan2.2 TI2V), encoded by its VAE.
    #[arg(long, requires = "pipeline")]
    pub image: Option<PathBuf>,
    /// Compute device: `auto`, `cpu`, `cuda:N` (build with `--features cuda`) or `metal`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Random seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Latent size `FxHxW` (frames, height, width in latent units) of a free run.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<[usize; 3]>,
    /// Frames of a task run.
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Number of denoising steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Timestep shift.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// What to capture inside the network (`record --capture` syntax).
    #[arg(long, default_value = "x0,decoded,token_norm,pca3@all")]
    pub capture: String,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Tasks to train on, comma-separated: `maze`, `symmetry`, `gravity`, `flood_fill`, `rotation`.
    #[arg(long, value_delimiter = ',', default_value = "maze")]
    pub tasks: Vec<String>,
    /// Folder for checkpoint.safetensors, model/ (diffusers layout + prompts), loss.csv, eval.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run saved in this folder (its recipe wins over the flags below).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Train until this many optimiser steps in total.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Write a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// Evaluate held-out instances every this many steps (0: never).
    #[arg(long, default_value_t = 0)]
    pub eval_every: u64,
    /// Held-out instances per task and size at each evaluation.
    #[arg(long, default_value_t = 20)]
    pub eval_count: u64,
    /// Instances per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (`AdamW`).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Transformer blocks.
    #[arg(long, default_value_t = 8)]
    pub layers: usize,
    /// Attention heads (of 32 channels each).
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 512)]
    pub ffn_dim: usize,
    /// Maze sizes in cells, `MIN-MAX`.
    #[arg(long, default_value = "4-6", value_parser = parse_range)]
    pub maze_sizes: (usize, usize),
    /// Frames of every training video.
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Seeds the initial weights and the stream of instances and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A trained model folder (config.json, weights, prompts.safetensors); default: the
    /// built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Task to evaluate.
    #[arg(long, default_value = "maze")]
    pub task: String,
    /// Task sizes, comma-separated (maze: cells per side); default: the task's own (maze 5,
    /// the others 6).
    #[arg(long, value_delimiter = ',')]
    pub size: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    pub frames: usize,
    /// Held-out instances per size.
    #[arg(long, visible_alias = "count", default_value_t = 100)]
    pub instances: u64,
    /// The first seed looked at (training seeds have bit 63 set).
    #[arg(long, default_value_t = 0)]
    pub seed_offset: u64,
    /// `held-out`: distinct puzzles of the held-out split (one puzzle key in 16, never drawn by
    /// the trainers), passing over any the model's `training_stream.json` shows it trained on;
    /// `all`: seeds K .. K + N as they come (not held out).
    #[arg(long, value_enum, default_value = "held-out")]
    pub split: InstanceSplit,
    /// Noise seeds per instance (the first is the instance's own seed, as in the app).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3.0)]
    pub shift: f64,
    #[arg(long, value_parser = parse_scheduler, default_value = "unipc")]
    pub scheduler: SchedulerKind,
    /// Also score `x0_hat` at every step and write the Chain-of-Steps curve and the commit-step
    /// distribution here (CSV, one row per size and step).
    #[arg(long, value_name = "CSV")]
    pub per_step: Option<PathBuf>,
    /// Also write each sample's commit step here (CSV: task, size, instance, noise seed index,
    /// commit step, empty when the sample ends unsolved, then one more column per
    /// --also-tolerance): how the default maze was picked.
    #[arg(long, value_name = "CSV")]
    pub per_instance: Option<PathBuf>,
    /// The scorers' colour tolerance: a produced pixel counts as a palette colour within this
    /// RGB distance (in [-1, 1] units; at most 0.54, under half the closest colours' gap).
    #[arg(long, default_value_t = stepscope_engine::tasks::TOLERANCE)]
    pub tolerance: f32,
    /// Also score the same samples at these tolerances (comma-separated): their solve counts,
    /// commit-step summaries and per-instance columns.
    #[arg(long, value_delimiter = ',', value_name = "TOL")]
    pub also_tolerance: Vec<f32>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A diffusers Wan transformer folder (config.json + safetensors weights); with
    /// --pipeline, the pipeline's `transformer/`.
    #[arg(long, required_unless_present = "pipeline", conflicts_with = "pipeline")]
    pub model: Option<PathBuf>,
    /// A diffusers Wan pipeline folder (`model_index.json`, `transformer/`, `text_encoder/`,
    /// `tokenizer/`, `vae/`, `scheduler/`): the prompt is encoded by its UMT5 text encoder, and
    /// its scheduler config sets the sampler and the shift unless --scheduler / --shift do.
    #[arg(long, requires = "prompt")]
    pub pipeline: Option<PathBuf>,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]` (without --pipeline).
    #[arg(long, required_unless_present = "pipeline", conflicts_with = "pipeline")]
    pub prompt_embeds: Option<PathBuf>,
    /// Safetensors file with `prompt_embeds` `[1, L, text_dim]` for the negative prompt.
    #[arg(long, conflicts_with = "pipeline")]
    pub negative_prompt_embeds: Option<PathBuf>,
    /// With --pipeline: the negative prompt (default: the empty prompt, as diffusers' pipeline).
    #[arg(long, requires = "pipeline")]
    pub negative_prompt: Option<String>,
    /// With --pipeline: the text length the prompt is padded or cut to (the pipeline's
    /// `max_sequence_length`).
    #[arg(long, default_value_t = 512, requires = "pipeline")]
    pub max_text_len: usize,
    /// With --pipeline: steps whose `x0_hat` is also decoded to pixels by the folder's VAE and
    /// stored (`s{s}/k{k}/video`, as the exporter stores them), comma-separated.
    #[arg(long, value_delimiter = ',', requires = "pipeline")]
    pub decode_steps: Vec<usize>,
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
    #[arg(long, conflicts_with = "image")]
    pub condition_latent: Option<PathBuf>,
    /// With an image-to-video --pipeline (Wan2.2 TI2V): the first frame (PNG, JPEG or GIF),
    /// encoded by the pipeline's VAE into the clean first latent frame; resized to the video's
    /// size where it differs.
    #[arg(long, requires = "pipeline")]
    pub image: Option<PathBuf>,
    /// Number of denoising steps.
    #[arg(long)]
    pub steps: usize,
    /// Timestep shift (Wan: 3 at 480p, 5 at 720p); with --pipeline, its scheduler's by default.
    #[arg(long, allow_negative_numbers = true, required_unless_present = "pipeline")]
    pub shift: Option<f64>,
    /// `unipc` or `euler`; default: UniPC, or with --pipeline its scheduler's.
    #[arg(long, value_parser = parse_scheduler)]
    pub scheduler: Option<SchedulerKind>,
    /// What to capture inside the network, e.g. `x0,token_norm,pca3@all;self_attn@3:q=0,17`.
    #[arg(long)]
    pub capture: Option<String>,
    /// Compute device: `auto` (a GPU where this build and the machine have one, else the CPU),
    /// `cpu`, `cuda:N` (build with `--features cuda`) or `metal` (`--features metal`).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Dtype the model computes in.
    #[arg(long, value_enum, default_value_t = ComputeDtype::F32)]
    pub dtype: ComputeDtype,
    /// Dtype tensors are stored in.
    #[arg(long, value_enum, default_value_t = StoreDtype::F32)]
    pub store: StoreDtype,
    /// The prompt: with --pipeline, encoded by its text encoder; otherwise noted in the file
    /// (the embeddings are what the model sees).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Output trajectory file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print each step's and each decode's wall time (the step ends with a read-back from the
    /// device, so GPU work is included) and the median step.
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A trajectory file.
    pub file: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read every tensor: check it against the file's checksums and count its NaN and
    /// infinite values. Exits with an error if any tensor is corrupt.
    #[arg(long)]
    pub verify: bool,
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

fn parse_view(text: &str) -> Result<StepView, String> {
    match text {
        "x0" | "x0_hat" => Ok(StepView::X0),
        "xt" | "x_t" | "latents" => Ok(StepView::Latents),
        "v" | "velocity" => Ok(StepView::Velocity),
        "video" | "decoded" => Ok(StepView::Video),
        other => Err(format!("`{other}` is not x0, xt, velocity or video")),
    }
}

fn parse_scheduler(text: &str) -> Result<SchedulerKind, String> {
    text.parse().map_err(|e: stepscope_engine::scheduler::SchedulerError| e.to_string())
}

fn parse_range(text: &str) -> Result<(usize, usize), String> {
    let parsed = match text.split_once('-') {
        Some((low, high)) => low.parse().ok().zip(high.parse().ok()),
        None => text.parse().ok().map(|size| (size, size)),
    };
    parsed.filter(|(low, high)| low <= high).ok_or_else(|| format!("`{text}` is not MIN-MAX (e.g. 4-6)"))
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

/// [`stepscope_engine::analysis::EnsembleMethod`] on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolMethod {
    LatentMean,
    X0Mean,
    BestOfK,
}

impl From<PoolMethod> for stepscope_engine::analysis::EnsembleMethod {
    fn from(method: PoolMethod) -> Self {
        match method {
            PoolMethod::LatentMean => Self::LatentMean,
            PoolMethod::X0Mean => Self::X0Mean,
            PoolMethod::BestOfK => Self::BestOfK,
        }
    }
}
