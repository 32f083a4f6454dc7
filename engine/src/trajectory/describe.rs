//! The plain-words description of a manifest (what `stepscope info FILE` prints).

use std::fmt::{self, Write as _};

use super::manifest::{Manifest, NoiseSource, SchedulerKind, SeedRecord};
use super::names::CaptureKind;

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Stepscope trajectory, format version {}, written by {}",
            self.format_version, self.created_by
        )?;
        self.fmt_model(f)?;
        self.fmt_conditioning(f)?;
        let schedule = &self.schedule;
        let scheduler = match schedule.scheduler {
            SchedulerKind::Euler => "Euler",
            SchedulerKind::UniPc => "UniPC",
        };
        write!(f, "Schedule: {scheduler}, {} steps, shift {}", schedule.steps, schedule.shift)?;
        if let (Some(first), Some(last)) = (schedule.sigmas.first(), schedule.sigmas.last()) {
            write!(f, ", sigma from {first} to {last}")?;
        }
        writeln!(f)?;

        let [channels, frames, height, width] = self.latent_shape;
        let [tok_f, tok_h, tok_w] = self.token_grid();
        let [p_t, p_h, p_w] = self.patch_size;
        writeln!(
            f,
            "Latents: {channels} channels x {frames} frames x {height} x {width} (C x F x H x W), {} per tensor \
             as f32; patch {p_t}x{p_h}x{p_w}, token grid {tok_f} x {tok_h} x {tok_w} ({} tokens)",
            format_bytes(self.latent_shape.iter().fold(4, |bytes: usize, &dim| bytes.saturating_mul(dim))),
            self.token_count()
        )?;
        let step_tensors: Vec<&str> = self.step_tensors.iter().map(|kind| kind.as_str()).collect();
        let step_tensors =
            if step_tensors.is_empty() { "nothing".to_owned() } else { step_tensors.join(", ") };
        writeln!(f, "Stored at each recorded step: {step_tensors}")?;
        if let Some(video) = &self.video {
            let [_, frames, height, width] = video.shape;
            writeln!(
                f,
                "Decoded video ({}): RGB x {frames} frames x {height} x {width}, at the steps each seed lists",
                video.decoder
            )?;
        }

        writeln!(f, "Seeds: {}", self.seeds.len())?;
        for (seed_idx, seed) in self.seeds.iter().enumerate() {
            writeln!(f, "  seed {seed_idx}: {}", self.seed_summary(seed))?;
        }
        self.fmt_captures(f)
    }
}

impl Manifest {
    fn fmt_model(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Model: {}, computing in {}", self.model.source, self.model.dtype)?;
        let config_number = |key: &str| self.model.config.get(key).and_then(serde_json::Value::as_u64);
        if let Some(layers) = config_number("num_layers") {
            write!(f, ", {layers} layers")?;
        }
        if let (Some(heads), Some(head_dim)) =
            (config_number("num_attention_heads"), config_number("attention_head_dim"))
        {
            write!(f, ", {heads} heads of {head_dim}")?;
        }
        writeln!(f)
    }

    fn fmt_conditioning(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conditioning = &self.conditioning;
        match &conditioning.prompt {
            Some(prompt) => write!(f, "Conditioning: prompt {prompt:?}")?,
            None => f.write_str("Conditioning: no prompt text")?,
        }
        writeln!(
            f,
            "; embeddings from {}; guidance scale {}; {} negative prompt; {} condition frame",
            conditioning.prompt_embeddings,
            conditioning.guidance_scale,
            if conditioning.negative_prompt { "with a" } else { "no" },
            if conditioning.condition_frame { "with a" } else { "no" },
        )?;
        if let Some(task) = &conditioning.task {
            write!(f, "Task: {}, instance seed {}", task.name, task.seed)?;
            if !task.params.is_empty() {
                write!(f, ", params {}", serde_json::Value::Object(task.params.clone()))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }

    fn seed_summary(&self, seed: &SeedRecord) -> String {
        let mut summary = match seed.noise {
            NoiseSource::RngSeed(rng_seed) => format!("RNG seed {rng_seed}"),
            NoiseSource::Given => "given noise".to_owned(),
        };
        if let Some(fork) = seed.forked_from {
            let _ = write!(summary, ", forked from seed {} at step {}", fork.seed_index, fork.step);
        }
        let _ = write!(
            summary,
            "; {} {} ({} of {})",
            steps_word(seed.steps.len()),
            format_index_list(&seed.steps),
            seed.steps.len(),
            self.schedule.steps
        );
        if !self.captures.layers.is_empty() && !self.captures.kinds.is_empty() {
            if seed.capture_steps.is_empty() {
                summary.push_str("; no captures");
            } else {
                let _ = write!(
                    summary,
                    "; captures at {} {}",
                    steps_word(seed.capture_steps.len()),
                    format_index_list(&seed.capture_steps)
                );
            }
        }
        if !seed.video_steps.is_empty() {
            let _ = write!(
                summary,
                "; decoded video at {} {}",
                steps_word(seed.video_steps.len()),
                format_index_list(&seed.video_steps)
            );
        }
        summary.push_str(if seed.final_latents { "; final latents" } else { "; no final latents" });
        summary
    }

    fn fmt_captures(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let captures = &self.captures;
        if captures.layers.is_empty() || captures.kinds.is_empty() {
            return writeln!(f, "Captures: none");
        }
        let kinds: Vec<&str> = captures.kinds.iter().map(|&kind| capture_kind_words(kind)).collect();
        write!(f, "Captures: layers {}; {}", format_index_list(&captures.layers), kinds.join(", "))?;
        if !captures.query_tokens.is_empty() {
            let tokens: Vec<String> = captures.query_tokens.iter().map(ToString::to_string).collect();
            write!(f, "; attention from tokens {}", tokens.join(", "))?;
        }
        writeln!(f)
    }
}

fn capture_kind_words(kind: CaptureKind) -> &'static str {
    match kind {
        CaptureKind::Decoded => "logit-lens picture",
        CaptureKind::TokenNorm => "token norms",
        CaptureKind::Pca3 => "3-component PCA",
        CaptureKind::SelfAttn => "self-attention",
        CaptureKind::CrossAttn => "cross-attention",
        CaptureKind::Hidden => "hidden states",
        CaptureKind::X0 => "clean-video prediction",
    }
}

fn steps_word(count: usize) -> &'static str {
    if count == 1 { "step" } else { "steps" }
}

/// Writes strictly increasing indices compactly, runs as ranges: `0-3, 5, 7-9`.
fn format_index_list(indices: &[usize]) -> String {
    let mut text = String::new();
    let mut rest = indices;
    while let Some((&start, _)) = rest.split_first() {
        let run_len = rest
            .iter()
            .enumerate()
            .take_while(|&(offset, &index)| start.checked_add(offset) == Some(index))
            .count();
        let end = rest[run_len - 1];
        if !text.is_empty() {
            text.push_str(", ");
        }
        let _ = match run_len {
            1 => write!(text, "{start}"),
            2 => write!(text, "{start}, {end}"),
            _ => write!(text, "{start}-{end}"),
        };
        rest = &rest[run_len..];
    }
    if text.is_empty() { "none".to_owned() } else { text }
}

/// A byte count in binary units, e.g. `512 B`, `1.5 KiB`, `12.3 MiB`.
pub(crate) fn format_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next_unit in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next_unit;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_collapse_runs() {
        assert_eq!(format_index_list(&[]), "none");
        assert_eq!(format_index_list(&[4]), "4");
        assert_eq!(format_index_list(&[0, 1, 2, 3, 5, 7, 8, 10, 11, 12]), "0-3, 5, 7, 8, 10-12");
    }

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
