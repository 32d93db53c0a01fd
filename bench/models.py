"""MagicAnimate's networks at full SD1.5 size (or tiny) with random weights, built in place: no files."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel
from transformers.models.clip.modeling_clip import CLIPTextEmbeddings

from magicanimate_core.loading import MagicAnimateModels
from magicanimate_core.models import AppearanceEncoder, UNet3DConditionModel
from magicanimate_core.models.motion_module import PositionalEncoding, sinusoidal_positions
from magicanimate_core.pipeline import MagicAnimatePipeline
from magicanimate_core.single_file import EmptyPromptTokenizer, shipped_config

# The keys of an SD1.5 UNet config that a ControlNet shares (what diffusers' `ControlNetModel.from_unet` copies).
CONTROLNET_SHARED_KEYS = (
    "in_channels",
    "flip_sin_to_cos",
    "freq_shift",
    "down_block_types",
    "block_out_channels",
    "layers_per_block",
    "downsample_padding",
    "mid_block_scale_factor",
    "act_fn",
    "norm_num_groups",
    "norm_eps",
    "cross_attention_dim",
    "attention_head_dim",
)
STOCK_CONDITIONING_CHANNELS = (16, 32, 96, 256)  # every SD1.5 ControlNet, MagicAnimate's DensePose one included

# Widths of the golden tiny checkpoints (shared/golden/tiny_checkpoints): 32 channels everywhere.
TINY_UNET = {"block_out_channels": [32, 32, 32, 32], "cross_attention_dim": 32, "norm_num_groups": 4}
TINY_VAE = {"block_out_channels": [32, 32, 32, 32]}
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2}
TINY_CONDITIONING_CHANNELS = (16, 16, 32, 32)
PERIOD = 2**20 + 7  # weights repeat with this period (see `fill_random`)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create floating-point parameters directly in `dtype`."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def configs(tiny: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """UNet, ControlNet, VAE and CLIP text configs: the shipped full-size ones, or the golden tiny widths."""
    unet = copy.deepcopy(shipped_config("sd15_unet"))
    vae = copy.deepcopy(shipped_config("sd_vae_ft_mse"))
    text = {k: v for k, v in shipped_config("clip_vit_l14_text").items() if not k.startswith("_")}
    if tiny:
        unet.update(TINY_UNET)
        vae.update(TINY_VAE)
        text.update(TINY_TEXT)
    controlnet = {key: unet[key] for key in CONTROLNET_SHARED_KEYS}
    conditioning = TINY_CONDITIONING_CHANNELS if tiny else STOCK_CONDITIONING_CHANNELS
    controlnet["conditioning_embedding_out_channels"] = conditioning
    return unet, controlnet, vae, text


def build_models(
    device: torch.device | str, dtype: torch.dtype, tiny: bool = False, seed: int = 0
) -> MagicAnimateModels:
    """All networks on `device` in `dtype`, with random weights (see `fill_random`), in eval mode.

    They are built on the meta device and then allocated once in place, so no weights are ever held twice
    and no time goes into per-layer initialisation (2.7 B parameters at full size).
    """
    unet_config, controlnet_config, vae_config, text_config = configs(tiny)
    with torch.device("meta"), default_dtype(dtype):
        models = MagicAnimateModels(
            unet=UNet3DConditionModel(unet_config),
            appearance_encoder=AppearanceEncoder(UNet2DConditionModel.from_config(unet_config)),
            controlnet=ControlNetModel(**controlnet_config),
            vae=AutoencoderKL.from_config(vae_config),
            text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)),
            tokenizer=EmptyPromptTokenizer(),
        )
    generator = torch.Generator(device).manual_seed(seed)
    pool = torch.rand(2 * PERIOD, generator=generator, device=device).mul_(2).sub_(1).to(dtype)
    for module in models.modules():
        module.to_empty(device=device)
        fill_random(module, pool, generator)
        restore_buffers(module)
        module.eval().requires_grad_(False)
    return models


def fill_random(module: nn.Module, pool: torch.Tensor, generator: torch.Generator) -> None:
    """Weights ~ U(-1, 1) / sqrt(fan_in) like PyTorch's default init; norm scales 1; biases 0.

    Each weight repeats a randomly placed, pre-scaled pool segment of `PERIOD` values (a broadcast copy:
    memory speed, instead of 2.7 B random draws); the odd period keeps output channels distinct.
    """
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.ndim == 1:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
                continue
            offset = int(torch.randint(0, len(pool) - PERIOD, (1,), generator=generator, device=generator.device))
            segment = pool[offset : offset + PERIOD] * param[0].numel() ** -0.5
            flat = param.view(-1)
            rows, rest = divmod(flat.numel(), PERIOD)
            flat[: rows * PERIOD].view(rows, PERIOD).copy_(segment.expand(rows, PERIOD))
            flat[rows * PERIOD :].copy_(segment[:rest])


def restore_buffers(module: nn.Module) -> None:
    """Recompute the buffers `to_empty` left uninitialised: motion-module positions and CLIP position ids."""
    for sub in module.modules():
        if isinstance(sub, PositionalEncoding):
            sub.pe.copy_(sinusoidal_positions(sub.pe.shape[1], sub.pe.shape[2]))
        elif isinstance(sub, CLIPTextEmbeddings):
            sub.position_ids.copy_(torch.arange(sub.position_ids.shape[-1]).expand(1, -1))
        elif any(True for _ in sub.buffers(recurse=False)):
            raise TypeError(f"{type(sub).__name__} has buffers bench.models does not know how to restore")


def build_pipeline(device: torch.device | str, dtype: torch.dtype, tiny: bool = False) -> MagicAnimatePipeline:
    return MagicAnimatePipeline(build_models(device, dtype, tiny))


def parameter_count(models: MagicAnimateModels) -> int:
    return sum(p.numel() for module in models.modules() for p in module.parameters())
