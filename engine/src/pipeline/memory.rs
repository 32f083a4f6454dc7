//! What a whole pipeline needs in memory, from its configs and its weight files' headers
//! (nothing is loaded): the text encoder (loaded first and freed once the prompt is encoded),
//! then the transformer and the VAE together, the transformer stepping and the VAE decoding in
//! turn.

use std::path::Path;

use candle_core::DType;

use super::folder::{PipelineError, PipelineFolder};
use crate::model::{MemoryEstimate, WanConfig, estimate_memory};
use crate::text::Umt5Config;
use crate::vae::WanVaeConfig;

/// One part's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartMemory {
    pub parameters: u64,
    pub weight_bytes: u64,
    /// The working memory of one use (an estimate).
    pub activation_bytes: u64,
}

impl PartMemory {
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes + self.activation_bytes
    }
}

/// The pipeline's parts and its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineMemory {
    pub encoder: PartMemory,
    pub transformer: MemoryEstimate,
    /// Wan2.2 A14B's low-noise expert, held beside the first (both stay loaded).
    pub low_noise_expert: Option<MemoryEstimate>,
    /// `None` where the VAE's weight file is not there to count.
    pub vae: Option<PartMemory>,
}

impl PipelineMemory {
    /// The most held at once: the encoder alone, or the transformer and the VAE with the larger
    /// of their working memories.
    #[must_use]
    pub fn peak_bytes(&self) -> u64 {
        let vae = self.vae.unwrap_or(PartMemory { parameters: 0, weight_bytes: 0, activation_bytes: 0 });
        let expert_weights = self.low_noise_expert.map_or(0, |expert| expert.weight_bytes);
        let later = self.transformer.weight_bytes
            + expert_weights
            + vae.weight_bytes
            + self.transformer.activation_bytes.max(vae.activation_bytes);
        self.encoder.total_bytes().max(later)
    }
}

/// The encoder's parameters (exact, from its config): the token embedding, per layer the four
/// attention projections, the position bias, two norms and the gated feed-forward, and the
/// final norm.
#[must_use]
pub fn encoder_parameters(config: &Umt5Config) -> u64 {
    let [vocab, d, inner, ff, heads, buckets, layers] = [
        config.vocab_size,
        config.d_model,
        config.inner_dim(),
        config.d_ff,
        config.num_heads,
        config.relative_attention_num_buckets,
        config.num_layers,
    ]
    .map(|value| value as u64);
    vocab * d + layers * (4 * d * inner + buckets * heads + 2 * d + 3 * d * ff) + d
}

/// The parameters of the tensors in a safetensors file whose names start with one of
/// `prefixes`, from its header alone (at most 100 MB read).
pub fn header_parameters(path: &Path, prefixes: &[&str]) -> Result<u64, PipelineError> {
    use std::io::Read as _;
    let read = |cause| PipelineError::Read { path: path.to_owned(), what: "a weights file's header", cause };
    let mut file = std::fs::File::open(path).map_err(read)?;
    let mut length = [0u8; 8];
    file.read_exact(&mut length).map_err(read)?;
    let length = u64::from_le_bytes(length).min(100 << 20);
    let mut header = Vec::new();
    file.take(length).read_to_end(&mut header).map_err(read)?;
    let invalid = |what: String| PipelineError::Weights { path: path.to_owned(), what };
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|err| invalid(format!("the header is not JSON: {err}")))?;
    let mut parameters = 0u64;
    for (name, entry) in &entries {
        if !prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let shape = entry
            .get("shape")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| invalid(format!("`{name}` has no shape")))?;
        let count =
            shape.iter().try_fold(1u64, |count, dim| dim.as_u64().and_then(|dim| count.checked_mul(dim)));
        parameters =
            parameters.saturating_add(count.ok_or_else(|| invalid(format!("`{name}` has a bad shape")))?);
    }
    Ok(parameters)
}

/// The pipeline in `folder` computing in `dtype` on a latent `[C, F, H, W]` with prompts of
/// `text_len` tokens.
pub fn estimate_pipeline(
    folder: &PipelineFolder,
    dtype: DType,
    [frames, height, width]: [usize; 3],
    text_len: usize,
) -> Result<PipelineMemory, PipelineError> {
    let bytes = dtype.size_in_bytes() as u64;
    let encoder_config = Umt5Config::from_file(&folder.text_encoder.join("config.json"))
        .map_err(|err| PipelineError::Config { path: folder.text_encoder.clone(), what: err.to_string() })?;
    let encoder_parameters = encoder_parameters(&encoder_config);
    let (l, d, ff, heads) = [text_len, encoder_config.d_model, encoder_config.d_ff, encoder_config.num_heads]
        .map(|value| value as u64)
        .into();
    let encoder = PartMemory {
        parameters: encoder_parameters,
        weight_bytes: encoder_parameters * bytes,
        // The stream, Q, K, V and the two feed-forward halves, and f32 scores and softmax.
        activation_bytes: l * (6 * d + 2 * ff) * bytes + 2 * l * l * heads * 4,
    };
    let estimate_transformer = |dir: &Path| {
        let invalid = |err: &dyn std::fmt::Display| PipelineError::Config {
            path: dir.to_owned(),
            what: err.to_string(),
        };
        let config = WanConfig::from_file(&dir.join("config.json")).map_err(|err| invalid(&err))?;
        let shape = [config.in_channels, frames, height, width];
        estimate_memory(&config, dtype, shape, folder.expand_timesteps).map_err(|err| invalid(&err))
    };
    let transformer = estimate_transformer(&folder.transformer)?;
    let low_noise_expert = folder.transformer_2.as_deref().map(estimate_transformer).transpose()?;
    let vae_config = WanVaeConfig::from_file(&folder.vae.join("config.json"))
        .map_err(|err| PipelineError::Config { path: folder.vae.clone(), what: err.to_string() })?;
    let weights = folder.vae.join("diffusion_pytorch_model.safetensors");
    let vae = if weights.is_file() {
        let parameters = header_parameters(&weights, &["decoder.", "post_quant_conv."])?;
        // One chunk at full resolution: four frames of the widest full-size stage, with about
        // eighteen buffers of that size live at the peak (inputs, the causal windows, norms in
        // f32, up-sampled inputs, outputs): measured on a real-size Wan2.1 VAE decoding two
        // latent frames at 480 x 832 on the CPU, 11.3 GB above the weights against 18 x 613 MB.
        // On the CPU a bf16 VAE computes in f32, so bf16 is counted as f32 here.
        let full_width =
            (vae_config.decoder_base() * vae_config.dim_mult.first().copied().unwrap_or(1)) as u64;
        let pixels = 64 * height as u64 * width as u64;
        let vae_bytes = bytes.max(4);
        Some(PartMemory {
            parameters,
            weight_bytes: parameters * vae_bytes,
            activation_bytes: 18 * full_width * pixels * 4 * vae_bytes,
        })
    } else {
        None
    };
    Ok(PipelineMemory { encoder, transformer, low_noise_expert, vae })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umt5_xxl_has_its_published_size() {
        // google/umt5-xxl's encoder, as Wan's pipelines ship it: 5.7 B parameters.
        let config = Umt5Config {
            vocab_size: 256_384,
            d_model: 4096,
            d_kv: 64,
            d_ff: 10_240,
            num_layers: 24,
            num_heads: 64,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "gated-gelu".to_owned(),
        };
        let parameters = encoder_parameters(&config);
        assert!((5_600_000_000..5_800_000_000).contains(&parameters), "{parameters}");
    }

    #[test]
    fn the_tiny_pipeline_counts_its_parts_from_configs_and_headers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wan_pipeline_tiny");
        let folder = PipelineFolder::open(&dir).expect("the fixture opens");
        let memory = estimate_pipeline(&folder, DType::F32, [3, 4, 6], 40).expect("an estimate");
        // The encoder's count from its config is the weights file's own.
        let from_header =
            header_parameters(&folder.text_encoder.join("model.safetensors"), &["shared.", "encoder."])
                .expect("a header");
        assert_eq!(memory.encoder.parameters, from_header);
        assert!(memory.vae.is_some_and(|vae| vae.parameters > 0));
        assert!(memory.peak_bytes() >= memory.encoder.total_bytes());
    }
}
