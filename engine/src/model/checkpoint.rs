//! Finding a diffusers checkpoint's files and checking every tensor against the config before
//! anything is loaded.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::config::WanConfig;
use super::error::{ModelError, Result};

const CONFIG_FILE: &str = "config.json";
const SINGLE_FILE: &str = "diffusion_pytorch_model.safetensors";
const INDEX_FILE: &str = "diffusion_pytorch_model.safetensors.index.json";

/// The files of a diffusers transformer directory.
#[derive(Debug, Clone)]
pub struct CheckpointFiles {
    pub config: PathBuf,
    /// One file, or every shard named by the index.
    pub weights: Vec<PathBuf>,
}

impl CheckpointFiles {
    /// Locates `config.json` and the weights (`diffusion_pytorch_model.safetensors`, or the
    /// shards listed by `diffusion_pytorch_model.safetensors.index.json`) in `dir`.
    pub fn locate(dir: &Path) -> Result<Self> {
        let problem = |what: String| ModelError::Directory { dir: dir.to_owned(), what };
        if !dir.is_dir() {
            return Err(problem("is not a directory".to_owned()));
        }
        let config = dir.join(CONFIG_FILE);
        if !config.is_file() {
            return Err(problem(format!("has no {CONFIG_FILE} (expected a diffusers transformer folder)")));
        }
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Ok(Self { config, weights: vec![single] });
        }
        let index = dir.join(INDEX_FILE);
        if !index.is_file() {
            return Err(problem(format!("has neither {SINGLE_FILE} nor {INDEX_FILE}")));
        }
        let weights = shards_from_index(&index).map_err(problem)?;
        for shard in &weights {
            if !shard.is_file() {
                return Err(problem(format!("the index names {} but it is not there", shard.display())));
            }
        }
        Ok(Self { config, weights })
    }
}

/// A sharded checkpoint's index lists one line per weight (the 14B's is about 100 KB); more
/// than this is not an index.
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// Reads the distinct shard files named by a sharded checkpoint's `weight_map`.
pub(crate) fn shards_from_index(index: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let text = super::config::read_capped(index, MAX_INDEX_BYTES)
        .map_err(|e| format!("cannot read {INDEX_FILE}: {e}"))?;
    shards_from_index_text(&text, index.parent().unwrap_or(Path::new(".")))
}

/// The distinct shard files in folder `dir` that the index text `text` names (the text of a
/// `diffusion_pytorch_model.safetensors.index.json`); an error for a shard outside the folder
/// or an index that lists none.
pub fn shards_from_index_text(text: &str, dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let parsed: Index = serde_json::from_str(text).map_err(|e| format!("{INDEX_FILE} is not valid: {e}"))?;
    let mut shards: Vec<PathBuf> = Vec::new();
    for file in parsed.weight_map.values() {
        // Shard names are plain file names; refuse paths that would leave the folder.
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(format!("{INDEX_FILE} names a shard outside the folder: {file}"));
        }
        let path = dir.join(file);
        if !shards.contains(&path) {
            shards.push(path);
        }
    }
    if shards.is_empty() {
        return Err(format!("{INDEX_FILE} lists no weights"));
    }
    Ok(shards)
}

/// Every tensor the transformer reads, with the shape `config` implies, keyed by diffusers name.
#[must_use]
pub fn expected_tensors(config: &WanConfig) -> BTreeMap<String, Vec<usize>> {
    let d = config.inner_dim();
    let [pt, ph, pw] = config.patch_size;
    let mut expected = BTreeMap::new();
    let mut linear = |name: &str, out_dim: usize, in_dim: usize| {
        expected.insert(format!("{name}.weight"), vec![out_dim, in_dim]);
        expected.insert(format!("{name}.bias"), vec![out_dim]);
    };
    linear("condition_embedder.time_embedder.linear_1", d, config.freq_dim);
    linear("condition_embedder.time_embedder.linear_2", d, d);
    linear("condition_embedder.time_proj", 6 * d, d);
    linear("condition_embedder.text_embedder.linear_1", d, config.text_dim);
    linear("condition_embedder.text_embedder.linear_2", d, d);
    linear("proj_out", config.out_channels() * config.patch_volume(), d);
    for layer_idx in 0..config.num_layers {
        let block = format!("blocks.{layer_idx}");
        for attn in ["attn1", "attn2"] {
            for proj in ["to_q", "to_k", "to_v", "to_out.0"] {
                linear(&format!("{block}.{attn}.{proj}"), d, d);
            }
        }
        linear(&format!("{block}.ffn.net.0.proj"), config.ffn_dim, d);
        linear(&format!("{block}.ffn.net.2"), d, config.ffn_dim);
    }
    for layer_idx in 0..config.num_layers {
        let block = format!("blocks.{layer_idx}");
        for attn in ["attn1", "attn2"] {
            expected.insert(format!("{block}.{attn}.norm_q.weight"), vec![d]);
            expected.insert(format!("{block}.{attn}.norm_k.weight"), vec![d]);
        }
        if config.cross_attn_norm {
            expected.insert(format!("{block}.norm2.weight"), vec![d]);
            expected.insert(format!("{block}.norm2.bias"), vec![d]);
        }
        expected.insert(format!("{block}.scale_shift_table"), vec![1, 6, d]);
    }
    expected.insert("patch_embedding.weight".to_owned(), vec![d, config.in_channels, pt, ph, pw]);
    expected.insert("patch_embedding.bias".to_owned(), vec![d]);
    expected.insert("scale_shift_table".to_owned(), vec![1, 2, d]);
    expected
}

/// Memory-maps the weight files and checks every expected tensor's presence, shape and dtype,
/// then returns a `VarBuilder` that loads them as `dtype` on `device`.
///
/// Extra tensors are allowed (diffusers ignores `norm_added_q`, for instance).
pub fn open_weights(
    files: &CheckpointFiles,
    config: &WanConfig,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    for path in &files.weights {
        // Catch truncation early with the file's own name in the message: candle's multi-file
        // loader would report the same failure without saying which shard.
        #[expect(unsafe_code, reason = "memory-mapping a weights file; see `map_weights`")]
        let single = unsafe { MmapedSafetensors::new(path) };
        single.map_err(|source| ModelError::Weights { path: path.clone(), cause: source })?;
    }
    let weights = map_weights(&files.weights)?;
    for (key, expected) in expected_tensors(config) {
        let view = weights
            .get(&key)
            .map_err(|_| ModelError::MissingTensor { key: key.clone(), expected: expected.clone() })?;
        if view.shape() != expected.as_slice() {
            return Err(ModelError::ShapeMismatch { key, expected, found: view.shape().to_vec() });
        }
        if !matches!(
            view.dtype(),
            safetensors::Dtype::F32
                | safetensors::Dtype::F16
                | safetensors::Dtype::BF16
                | safetensors::Dtype::F64
        ) {
            return Err(ModelError::UnsupportedDtype { key, found: format!("{:?}", view.dtype()) });
        }
    }
    Ok(VarBuilder::from_backend(Box::new(weights), dtype, device.clone()))
}

pub(crate) fn map_weights(paths: &[PathBuf]) -> Result<MmapedSafetensors> {
    // SAFETY: the checkpoint files are mapped read-only; like every mmap-based loader
    // (safetensors, candle) we rely on nobody truncating them while the model is loaded.
    #[expect(unsafe_code, reason = "memory-mapping checkpoint files, read-only")]
    let mapped = unsafe { MmapedSafetensors::multi(paths) };
    mapped.map_err(|source| ModelError::Weights {
        path: paths.first().cloned().unwrap_or_default(),
        cause: source,
    })
}
