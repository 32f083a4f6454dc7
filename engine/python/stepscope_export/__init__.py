"""Export diffusers Wan runs as Stepscope trajectory files (format version 1).

A trajectory file (`engine/TRAJECTORY_FORMAT.md`) records a denoising run step by step: the
latents entering each step, the model's velocity, the predicted clean latents, the final
latents, and optional captures from inside the transformer. Stepscope's viewer and command line
open what this package writes.

- `export_run(pipe, path, seeds=[...], **pipeline_kwargs)`: run a `WanPipeline` or
  `WanImageToVideoPipeline` and write the file (`pipeline.py`).
- `CaptureRequest`: captures inside the transformer (`capture.py`).
- `save_prompt_embeds(pipe, prompt, path)`: prompt embeddings for `stepscope record`
  (`prompts.py`).
- `write_trajectory`, `check_file`: the format itself (`writer.py`, `check.py`).
"""

__version__ = "0.1.0"

from .capture import CaptureRequest, attention_probs, logit_lens
from .check import TrajectoryFileError, check_file, corrupt_tensors
from .manifest import FORMAT_VERSION, MANIFEST_KEY, ManifestError, check_manifest
from .noise import stepscope_noise
from .pipeline import CREATED_BY, ExportResult, SeedRecord, decode_latents, export_run
from .prompts import encode_prompt, save_prompt_embeds, write_embeds
from .writer import write_trajectory

__all__ = [
    "CREATED_BY",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "CaptureRequest",
    "ExportResult",
    "ManifestError",
    "SeedRecord",
    "TrajectoryFileError",
    "__version__",
    "attention_probs",
    "check_file",
    "check_manifest",
    "corrupt_tensors",
    "decode_latents",
    "encode_prompt",
    "export_run",
    "logit_lens",
    "save_prompt_embeds",
    "stepscope_noise",
    "write_embeds",
    "write_trajectory",
]
