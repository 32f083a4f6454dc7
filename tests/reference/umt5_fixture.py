#!/usr/bin/env python3
"""Writes the UMT5 text-encoder fixture that `tests/text_encoder_parity.rs` compares the engine with.

What it writes under tests/fixtures/umt5_tiny/ (about 100 KB):

  tokenizer/      a tiny T5-style Unigram tokenizer (trained here on a few sentences: `<pad>` 0,
                  `</s>` 1, `<unk>` 2, Metaspace pre-tokenizer, `</s>` appended), saved by
                  `T5TokenizerFast.save_pretrained` as Wan pipeline folders hold it (tokenizer.json).
  text_encoder/   a tiny random `UMT5EncoderModel` (d_model 32, 4 heads of 8, d_ff 64, 2 layers,
                  32 relative-position buckets up to distance 128, gated GELU), torch seed 0,
                  saved with `save_pretrained` (config.json + model.safetensors).
  (tests/reference/wan_pipeline_fixture.py, run next, moves tokenizer/ and text_encoder/ into the
  tiny pipeline folder tests/fixtures/wan_pipeline_tiny/, where the parity test reads them.)
  expected.safetensors
                  per prompt i: `ids_{i}` and `mask_{i}` (the tokenizer's input ids and attention
                  mask, padded to MAX_LEN), `hidden_{i}` (the encoder's last hidden state
                  [MAX_LEN, 32]) and `embeds_{i}` (diffusers' `WanPipeline._get_t5_prompt_embeds`:
                  cleaned, tokenized, encoded, zeroed past the prompt); the prompts are in the
                  metadata (`prompts`, JSON), with MAX_LEN (`max_length`) and the versions used.

The prompts exercise the pipeline's cleaning (HTML entities, twice-escaped; runs of white space,
including a tab and a newline), an empty prompt, and truncation (a prompt longer than MAX_LEN
tokens keeps MAX_LEN - 1 of them and `</s>`). diffusers applies `ftfy.fix_text` only when ftfy is
installed; this script refuses to run where it is, so the fixture is the pipeline without ftfy.

Run from the repository root in a virtualenv with torch, transformers, tokenizers, diffusers:
    python tests/reference/umt5_fixture.py
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import diffusers
import tokenizers
import torch
import transformers
from diffusers.pipelines.wan.pipeline_wan import WanPipeline
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import T5TokenizerFast, UMT5Config, UMT5EncoderModel

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "umt5_tiny"
MAX_LEN = 40
CORPUS = [
    "a red ball rolls across a wooden table",
    "the maze has white corridors between black walls",
    "draw the route from the green start to the red flag",
    "a cat & a dog play in the garden at dusk",
    "waves crash on the rocks while gulls circle above",
    "slow motion video of rain falling on a city street",
]
PROMPTS = [
    "a red ball rolls across a wooden table",
    "  a cat &amp;amp; a dog\tplay \n in the   garden  ",
    "",
    "draw the route from the green start to the red flag, then the maze has white corridors "
    "between black walls and waves crash on the rocks",
    "&lt;b&gt; rain &#38; gulls &quot;above&quot; &#x41;",
]


class _PipelineStandIn:
    """What `WanPipeline._get_t5_prompt_embeds` reads of `self`."""

    def __init__(self, tokenizer, text_encoder):
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self._execution_device = torch.device("cpu")


def make_tokenizer() -> T5TokenizerFast:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0)


def main() -> None:
    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is installed: diffusers would apply ftfy.fix_text; the fixture is the pipeline without it")
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(OUT / "tokenizer")
    torch.manual_seed(0)
    config = UMT5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
    )
    encoder = UMT5EncoderModel(config).eval()
    with torch.no_grad():  # larger weights than the default init, so that every part matters
        for parameter in encoder.parameters():
            parameter.normal_(0.0, 0.5)
    encoder.save_pretrained(OUT / "text_encoder", safe_serialization=True)

    stand_in = _PipelineStandIn(tokenizer, encoder)
    tensors = {}
    for idx, prompt in enumerate(PROMPTS):
        cleaned = diffusers.pipelines.wan.pipeline_wan.prompt_clean(prompt)
        inputs = tokenizer(
            [cleaned], padding="max_length", max_length=MAX_LEN, truncation=True, add_special_tokens=True,
            return_attention_mask=True, return_tensors="pt",
        )
        with torch.no_grad():
            hidden = encoder(inputs.input_ids, inputs.attention_mask).last_hidden_state[0]
            embeds = WanPipeline._get_t5_prompt_embeds(
                stand_in, prompt=prompt, max_sequence_length=MAX_LEN, device=torch.device("cpu"), dtype=torch.float32
            )[0]
        tensors[f"ids_{idx}"] = inputs.input_ids[0].to(torch.int64).contiguous()
        tensors[f"mask_{idx}"] = inputs.attention_mask[0].to(torch.int64).contiguous()
        tensors[f"hidden_{idx}"] = hidden.float().contiguous()
        tensors[f"embeds_{idx}"] = embeds.float().contiguous()
        print(f"prompt {idx}: {int(inputs.attention_mask.sum())} tokens, cleaned {cleaned!r}")
    metadata = {
        "prompts": json.dumps(PROMPTS),
        "max_length": str(MAX_LEN),
        "versions": json.dumps(
            {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
                "diffusers": diffusers.__version__,
            }
        ),
    }
    save_file(tensors, OUT / "expected.safetensors", metadata=metadata)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
