//! Prompt embeddings kept on disk per (text encoder, tokenizer, prompt, length), so that a run
//! with a prompt encoded before never loads the encoder (umt5-xxl is 5.7 B parameters). The key
//! hashes what the embeddings depend on: the encoder's `config.json` and the size and
//! modification time of its weight files, the tokenizer's `tokenizer.json`, the prompt and the
//! length; a changed file gives another key. Entries are safetensors files holding
//! `prompt_embeds` `[1, L, D]` (f32), written atomically.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// Files larger than this are hashed by size and modification time, not read.
const HASHED_BYTES: u64 = 64 << 20;

/// Where the embeddings are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    /// The cache in `dir` (made on first store).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The user's cache: `$XDG_CACHE_HOME/stepscope/prompt-embeddings` (or `~/.cache/...`; on
    /// Windows `%LOCALAPPDATA%\stepscope\...`); `None` where no home is known.
    #[must_use]
    pub fn for_user() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(Self::new(base.join("stepscope").join("prompt-embeddings")))
    }

    /// The entry's file for `prompt` at `max_length` with the encoder in `encoder_dir` (run in
    /// `dtype`) and the tokenizer in `tokenizer_dir`.
    #[must_use]
    pub fn entry(
        &self,
        (encoder_dir, tokenizer_dir): (&Path, &Path),
        dtype: DType,
        prompt: &str,
        max_length: usize,
    ) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        "stepscope prompt embeddings v1".hash(&mut hasher);
        for file in [encoder_dir.join("config.json"), tokenizer_dir.join("tokenizer.json")] {
            hash_file(&file, &mut hasher);
        }
        if let Ok(entries) = std::fs::read_dir(encoder_dir) {
            let mut weights: Vec<PathBuf> = entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors" || ext == "json"))
                .collect();
            weights.sort();
            for file in weights {
                hash_file(&file, &mut hasher);
            }
        }
        format!("{dtype:?}").hash(&mut hasher);
        prompt.hash(&mut hasher);
        max_length.hash(&mut hasher);
        self.dir.join(format!("{:016x}.safetensors", hasher.finish()))
    }

    /// The embeddings stored for `entry`, if any (a file that does not read as them is ignored).
    #[must_use]
    pub fn load(&self, entry: &Path, device: &Device) -> Option<Tensor> {
        let mut tensors = candle_core::safetensors::load(entry, device).ok()?;
        tensors.remove("prompt_embeds").filter(|tensor| tensor.rank() == 3)
    }

    /// Keeps `embeddings` as `entry` (best effort: a cache that cannot be written is not an error
    /// of the run).
    pub fn store(&self, entry: &Path, embeddings: &Tensor) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(embeddings) = embeddings.to_dtype(candle_core::DType::F32) else { return };
        let tensors = std::collections::HashMap::from([("prompt_embeds".to_owned(), embeddings)]);
        let Ok(bytes) = safetensors::serialize(&tensors, None) else { return };
        let _ = crate::trajectory::replace_file_with(entry, &bytes);
    }
}

/// Hashes a small file's contents, a large one's size and modification time, a missing one's
/// absence.
fn hash_file(path: &Path, hasher: &mut impl Hasher) {
    use std::io::Read as _;
    path.file_name().hash(hasher);
    let Ok(meta) = std::fs::metadata(path) else {
        "missing".hash(hasher);
        return;
    };
    if meta.len() <= HASHED_BYTES {
        let mut bytes = Vec::new();
        if std::fs::File::open(path).and_then(|file| file.take(HASHED_BYTES).read_to_end(&mut bytes)).is_ok()
        {
            bytes.hash(hasher);
            return;
        }
    }
    meta.len().hash(hasher);
    if let Ok(modified) = meta.modified() {
        modified.hash(hasher);
    }
}

/// The embeddings `[1, max_length, D]` of each of `prompts`, from `cache` where it has them;
/// the encoder (in `parts`: its folder and the tokenizer's) is loaded by `load` only if one is
/// missing, and what it encodes is kept.
pub fn encode_prompts(
    prompts: &[&str],
    max_length: usize,
    parts: (&Path, &Path),
    cache: Option<&EmbeddingCache>,
    load: impl FnOnce() -> Result<super::PromptEncoder, super::TextError>,
    (dtype, device): (DType, &Device),
) -> Result<Vec<Tensor>, super::TextError> {
    let entries: Vec<Option<PathBuf>> = prompts
        .iter()
        .map(|prompt| cache.map(|cache| cache.entry(parts, dtype, prompt, max_length)))
        .collect();
    let mut found: Vec<Option<Tensor>> = entries
        .iter()
        .map(|entry| Some((cache?, entry.as_ref()?)).and_then(|(cache, entry)| cache.load(entry, device)))
        .collect();
    if found.iter().any(Option::is_none) {
        let encoder = load()?;
        for ((prompt, entry), slot) in prompts.iter().zip(&entries).zip(&mut found) {
            if slot.is_none() {
                let embeddings = encoder.encode(prompt, max_length)?;
                if let (Some(cache), Some(entry)) = (cache, entry) {
                    cache.store(entry, &embeddings);
                }
                *slot = Some(embeddings);
            }
        }
    }
    Ok(found.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wan_pipeline_tiny")
    }

    #[test]
    fn a_prompt_encoded_once_is_read_back_without_loading_the_encoder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = EmbeddingCache::new(dir.path().join("cache"));
        let (encoder_dir, tokenizer_dir) = (pipeline().join("text_encoder"), pipeline().join("tokenizer"));
        let load =
            || super::super::PromptEncoder::load(&tokenizer_dir, &encoder_dir, DType::F32, &Device::Cpu);
        let prompts = ["a red ball", ""];
        let parts = (encoder_dir.as_path(), tokenizer_dir.as_path());
        let on = (DType::F32, &Device::Cpu);
        let first = encode_prompts(&prompts, 16, parts, Some(&cache), load, on).expect("encoded");
        let again =
            encode_prompts(&prompts, 16, parts, Some(&cache), || panic!("the encoder was loaded again"), on)
                .expect("from the cache");
        for (a, b) in first.iter().zip(&again) {
            let diff =
                (a - b).and_then(|d| d.abs()).and_then(|d| d.max_all()).and_then(|d| d.to_scalar::<f32>());
            assert_eq!(diff.ok(), Some(0.0));
        }
        // Another length or prompt is another entry.
        let entry = |prompt: &str, length: usize, dtype: DType| cache.entry(parts, dtype, prompt, length);
        assert_ne!(entry("a red ball", 16, DType::F32), entry("a red ball", 17, DType::F32));
        assert_ne!(entry("a", 16, DType::F32), entry("b", 16, DType::F32));
        assert_ne!(entry("a", 16, DType::F32), entry("a", 16, DType::BF16));
    }
}
