//! From a typed prompt to the embeddings a Wan transformer takes, as diffusers'
//! `WanPipeline._get_t5_prompt_embeds` makes them: the prompt cleaned (HTML entities unescaped
//! twice, runs of white space made one space, trimmed; diffusers also applies `ftfy.fix_text`
//! where ftfy is installed, which this does not: the embeddings are those of a pipeline without
//! ftfy), tokenized by the pipeline's `tokenizer.json` with `</s>` appended and cut to
//! `max_length` tokens, padded with `<pad>` to `max_length`, encoded by UMT5 under the attention
//! mask, and zeroed past the prompt's tokens.
//!
//! A pipeline folder whose tokenizer has only `spiece.model` (no `tokenizer.json`) can be given
//! one with transformers: `T5TokenizerFast.from_pretrained(dir).save_pretrained(dir)`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

use super::config::Umt5Config;
use super::error::TextError;
use super::umt5::Umt5Encoder;
use crate::part_error::PartError;

/// The longest a `tokenizer.json` may be (umt5-xxl's is 16 MB).
const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// Whether Python's `str.isspace` (and so the pipeline's `\s`) counts `c` as white space:
/// Unicode's white space and the four ASCII separators U+001C to U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The prompt as the pipeline cleans it (without ftfy): HTML entities unescaped twice, every
/// run of white space one space, no white space at either end.
#[must_use]
pub fn clean_prompt(text: &str) -> String {
    let once = html_escape::decode_html_entities(text);
    let twice = html_escape::decode_html_entities(&once);
    let mut cleaned = String::with_capacity(twice.len());
    for word in twice.split(is_python_space).filter(|word| !word.is_empty()) {
        if !cleaned.is_empty() {
            cleaned.push(' ');
        }
        cleaned.push_str(word);
    }
    cleaned
}

/// A prompt's tokens: ids and attention mask, each `max_length` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTokens {
    pub ids: Vec<u32>,
    /// 1 for the prompt's tokens (`</s>` included), 0 for padding.
    pub mask: Vec<u32>,
}

impl PromptTokens {
    /// How many tokens the prompt has (`</s>` included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.mask.iter().filter(|&&m| m == 1).count()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tokenizer and the text encoder of a Wan pipeline.
#[derive(Debug)]
pub struct PromptEncoder {
    tokenizer: Tokenizer,
    encoder: Umt5Encoder,
    pad_id: u32,
    device: Device,
}

impl PromptEncoder {
    /// Loads `tokenizer_dir/tokenizer.json` and the encoder in `encoder_dir` (`config.json` and
    /// `model.safetensors`, or the shards its index names) as `dtype` on `device`.
    pub fn load(
        tokenizer_dir: &Path,
        encoder_dir: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, TextError> {
        let tokenizer_path = tokenizer_dir.join("tokenizer.json");
        let text =
            crate::model::config::read_capped(&tokenizer_path, MAX_TOKENIZER_BYTES).map_err(|cause| {
                PartError::Read { path: tokenizer_path.clone(), what: "the tokenizer", cause }
            })?;
        let tokenizer = Tokenizer::from_bytes(text.as_bytes()).map_err(|cause| TextError::Tokenizer {
            path: tokenizer_path.clone(),
            cause: cause.to_string(),
        })?;
        let pad_id = tokenizer.token_to_id("<pad>").ok_or_else(|| TextError::Tokenizer {
            path: tokenizer_path.clone(),
            cause: "it has no `<pad>` token (a T5 tokenizer pads with `<pad>`, id 0)".to_owned(),
        })?;
        let config = Umt5Config::from_file(&encoder_dir.join("config.json"))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(TextError::Tokenizer {
                path: tokenizer_path,
                cause: format!(
                    "it knows {vocab} tokens but the encoder in {} only {}: they do not belong together",
                    encoder_dir.display(),
                    config.vocab_size
                ),
            });
        }
        let vb = open_encoder_weights(encoder_dir, dtype, device)?;
        let encoder = Umt5Encoder::new(&vb, config)?;
        Ok(Self { tokenizer, encoder, pad_id, device: device.clone() })
    }

    /// The cleaned `prompt`'s tokens, `</s>` appended, cut or padded to `max_length`.
    pub fn tokenize(&self, prompt: &str, max_length: usize) -> Result<PromptTokens, TextError> {
        if max_length == 0 {
            return Err(TextError::Tokenize("the maximum length must be at least 1".to_owned()));
        }
        let encoding = self
            .tokenizer
            .encode(clean_prompt(prompt), true)
            .map_err(|err| TextError::Tokenize(err.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        if ids.len() > max_length {
            // As the pipeline's tokenizer truncates: the first tokens, then the closing `</s>`.
            let eos = *ids.last().unwrap_or(&self.pad_id);
            ids.truncate(max_length - 1);
            ids.push(eos);
        }
        let length = ids.len();
        let mut mask = vec![1; length];
        ids.resize(max_length, self.pad_id);
        mask.resize(max_length, 0);
        Ok(PromptTokens { ids, mask })
    }

    /// The embeddings `[1, max_length, D]` (f32) of `prompt`: the encoder's last hidden state,
    /// zero past the prompt's tokens.
    pub fn encode(&self, prompt: &str, max_length: usize) -> Result<Tensor, TextError> {
        let tokens = self.tokenize(prompt, max_length)?;
        let hidden = self.hidden_states(&tokens)?.to_dtype(DType::F32)?;
        let keep = Tensor::from_vec(
            tokens.mask.iter().map(|&m| m as f32).collect::<Vec<_>>(),
            (1, max_length, 1),
            &self.device,
        )?;
        Ok(hidden.broadcast_mul(&keep)?)
    }

    /// The encoder's last hidden state `[1, L, D]` of `tokens`.
    pub fn hidden_states(&self, tokens: &PromptTokens) -> Result<Tensor, TextError> {
        let length = tokens.ids.len();
        let ids = Tensor::from_vec(tokens.ids.clone(), (1, length), &self.device)?;
        let mask = Tensor::from_vec(tokens.mask.clone(), (1, length), &self.device)?;
        self.encoder.forward(&ids, &mask)
    }

    #[must_use]
    pub fn encoder(&self) -> &Umt5Encoder {
        &self.encoder
    }
}

/// The encoder's weights (`model.safetensors`, or the shards `model.safetensors.index.json`
/// names), mapped, every tensor the encoder reads checked to exist.
fn open_encoder_weights(dir: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>, TextError> {
    let single = dir.join("model.safetensors");
    let files = if single.is_file() {
        vec![single]
    } else {
        crate::model::checkpoint::shards_from_index(&dir.join("model.safetensors.index.json"))
            .map_err(|what| PartError::Weights { path: dir.to_owned(), what })?
    };
    let weights = crate::model::checkpoint::map_weights(&files)
        .map_err(|err| PartError::Weights { path: dir.to_owned(), what: err.to_string() })?;
    Ok(VarBuilder::from_backend(Box::new(weights), dtype, device.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_cleaned_as_the_pipeline_cleans_them() {
        assert_eq!(
            clean_prompt("  a cat &amp;amp; a dog\tplay \n in the   garden  "),
            "a cat & a dog play in the garden"
        );
        assert_eq!(clean_prompt("&lt;b&gt; rain &#38; &quot;x&quot; &#x41;"), "<b> rain & \"x\" A");
        assert_eq!(clean_prompt("\u{1c}a\u{a0}b\u{3000}"), "a b");
        assert_eq!(clean_prompt(""), "");
    }
}
