"""Tiny random Wan pipelines for tests and fixtures: real diffusers classes, toy sizes, fixed seeds.

No text encoder or tokenizer: runs pass `prompt_embeds` `[1, L, TEXT_DIM]` directly. Sizes: 9
frames of 32 x 48 pixels -> latents `[16, 3, 4, 6]` -> with patch (1, 2, 2) a `3 x 2 x 3` token
grid (18 tokens), non-square so that a swapped row/column cannot hide.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)

TEXT_DIM = 32
TEXT_LEN = 7
LATENT_CHANNELS = 16
HEADS = 2
HEAD_DIM = 12
NUM_LAYERS = 2
FRAMES, HEIGHT, WIDTH = 9, 32, 48
# The video size every test pipeline call uses.
SIZE = dict(height=HEIGHT, width=WIDTH, num_frames=FRAMES)
LATENT_SHAPE = [LATENT_CHANNELS, 3, 4, 6]


def tiny_transformer(in_channels: int = LATENT_CHANNELS, seed: int = 0) -> WanTransformer3DModel:
    """A 2-block Wan transformer, 2 heads x 12 (D = 24), random weights from `seed`."""
    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=HEADS,
        attention_head_dim=HEAD_DIM,
        in_channels=in_channels,
        out_channels=LATENT_CHANNELS,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=48,
        num_layers=NUM_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    ).eval()


def tiny_vae(seed: int = 1) -> AutoencoderKLWan:
    """A Wan VAE with 3 base channels and z_dim 16 (temporal factor 4, spatial factor 8)."""
    torch.manual_seed(seed)
    return AutoencoderKLWan(
        base_dim=3, z_dim=LATENT_CHANNELS, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    ).eval()


def unipc(shift: float = 3.0) -> UniPCMultistepScheduler:
    """Wan's shipped UniPC configuration (flow prediction, flow sigmas)."""
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=shift,
        solver_order=2,
        solver_type="bh2",
        predict_x0=True,
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="linspace",
    )


def euler(shift: float = 5.0) -> FlowMatchEulerDiscreteScheduler:
    """Flow-matching Euler with a plain shift."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def t2v_pipeline(scheduler: object | None = None) -> WanPipeline:
    """A tiny text-to-video pipeline (Wan2.1 layout)."""
    return WanPipeline(
        tokenizer=None, text_encoder=None, vae=tiny_vae(), scheduler=scheduler or unipc(), transformer=tiny_transformer()
    )


def i2v_pipeline(expand_timesteps: bool, scheduler: object | None = None) -> WanImageToVideoPipeline:
    """A tiny image-to-video pipeline without an image encoder.

    `expand_timesteps=False`: the Wan2.1 / Wan2.2-A14B layout, the image entering as 20 extra input
    channels (4 mask + 16 latent), `image_dim=None` so no CLIP image embedding is needed.
    `expand_timesteps=True`: the Wan2.2 TI2V layout, the clean image latent as frame 0.
    """
    in_channels = LATENT_CHANNELS if expand_timesteps else 2 * LATENT_CHANNELS + 4
    return WanImageToVideoPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=tiny_vae(),
        scheduler=scheduler or euler(),
        transformer=tiny_transformer(in_channels=in_channels, seed=2),
        expand_timesteps=expand_timesteps,
    )


def text_embeds(seed: int, length: int = TEXT_LEN) -> torch.Tensor:
    """Random prompt embeddings `[1, length, TEXT_DIM]`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, length, TEXT_DIM, generator=generator)


def random_image(seed: int = 3) -> torch.Tensor:
    """A random RGB image `[1, 3, HEIGHT, WIDTH]` in [0, 1] (what the pipelines' image processor takes)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, HEIGHT, WIDTH, generator=generator)
