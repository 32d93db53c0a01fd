"""Reuse the user's SD1.5 single-file checkpoint and VAE file instead of diffusers folders.

A single-file SD1.5 checkpoint (`models/checkpoints/*.safetensors|.ckpt`) uses the original LDM key layout
(`model.diffusion_model.*`, `cond_stage_model.transformer.*`, `first_stage_model.*`); a VAE file
(`models/vae/*`) uses `encoder.*`, `decoder.*`, `quant_conv.*`, `post_quant_conv.*`, with or without a
`first_stage_model.` prefix. Keys are mapped in memory with diffusers' offline state-dict converters and
the configs shipped in `configs/` (byte-identical to the upstream SD1.5 / CLIP / sd-vae-ft-mse files).
Nothing touches the network. Tests pass tiny configs through the optional `configs`/`config` arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from transformers import BatchEncoding, CLIPTextConfig, CLIPTextModel

from .weights_io import StateDict, read_state_dict

CONFIG_DIR = Path(__file__).with_name("configs")
UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "cond_stage_model.transformer."
SDXL_MARKER = "conditioner.embedders.1."
POSITION_IDS = "text_model.embeddings.position_ids"
SD15_BOS, SD15_EOS, SD15_MAX_LENGTH = 49406, 49407, 77


def shipped_config(name: str) -> dict[str, Any]:
    """A config from `configs/`: `sd15_unet`, `clip_vit_l14_text` or `sd_vae_ft_mse`."""
    return json.loads((CONFIG_DIR / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SD15Configs:
    """Configs used to rebuild SD1.5 from a single file; the defaults are the shipped full-size ones."""

    unet: dict[str, Any] = field(default_factory=lambda: shipped_config("sd15_unet"))
    text_encoder: dict[str, Any] = field(default_factory=lambda: shipped_config("clip_vit_l14_text"))
    bos_token_id: int = SD15_BOS
    eos_token_id: int = SD15_EOS


class EmptyPromptTokenizer:
    """Stands in for SD1.5's CLIPTokenizer where only the empty prompt is ever encoded (MagicAnimate).

    Called like a CLIPTokenizer with padding="max_length", max_length=77, truncation=True,
    return_tensors="pt", it returns the same ids: bos then eos padding. Any non-empty prompt is refused.
    """

    def __init__(self, bos_token_id: int = SD15_BOS, eos_token_id: int = SD15_EOS, model_max_length: int = 77):
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = eos_token_id
        self.model_max_length = model_max_length

    def __call__(self, text: str | list[str], max_length: int | None = None, **_: Any) -> BatchEncoding:
        prompts = [text] if isinstance(text, str) else list(text)
        if any(prompt != "" for prompt in prompts):
            raise ValueError(
                f"prompt {next(p for p in prompts if p != '')!r}: a single-file SD1.5 checkpoint has no tokenizer "
                "files, so only the empty prompt (MagicAnimate's only prompt) can be encoded. Use the "
                "diffusers folder stable-diffusion-v1-5/tokenizer for other prompts."
            )
        length = max_length or self.model_max_length
        ids = torch.full((len(prompts), length), self.eos_token_id, dtype=torch.long)
        ids[:, 0] = self.bos_token_id
        return BatchEncoding({"input_ids": ids, "attention_mask": torch.ones_like(ids)})


@dataclass
class SD15Components:
    unet_state_dict: StateDict  # diffusers UNet2DConditionModel key names
    unet_config: dict[str, Any]
    text_encoder: CLIPTextModel
    tokenizer: EmptyPromptTokenizer


def _expected_keys(model_class: type, config: Any) -> set[str]:
    with torch.device("meta"):
        model = model_class(config) if isinstance(config, CLIPTextConfig) else model_class.from_config(config)
    return set(model.state_dict())


def _check_keys(path: Path, what: str, got: set[str], expected: set[str], ignore: set[str] = frozenset()) -> None:
    missing, unexpected = sorted(expected - got - ignore), sorted(got - expected - ignore)
    if missing or unexpected:
        raise ValueError(
            f"{path}: the {what} weights do not match SD1.5 ({len(missing)} missing, first {missing[:5]}; "
            f"{len(unexpected)} unexpected, first {unexpected[:5]}). Use an SD1.5-architecture checkpoint "
            "(not SDXL/SD2/inpainting)."
        )


def load_sd15_single_file(
    path: str | Path, dtype: torch.dtype = torch.float32, configs: SD15Configs | None = None
) -> SD15Components:
    """SD1.5 UNet weights (diffusers names), its config, the CLIP text encoder and an empty-prompt tokenizer."""
    path = Path(path)
    configs = configs or SD15Configs()
    checkpoint = read_state_dict(path)
    if any(key.startswith(SDXL_MARKER) for key in checkpoint):
        raise ValueError(f"{path} is an SDXL checkpoint; MagicAnimate needs an SD1.5 checkpoint")
    for prefix, what in ((UNET_PREFIX, "UNet"), (CLIP_PREFIX, "text encoder")):
        if not any(key.startswith(prefix) for key in checkpoint):
            raise ValueError(
                f"{path} has no {what} weights (no '{prefix}*' keys): it is not a full SD1.5 single-file "
                "checkpoint (a VAE or LoRA file?). Pick a checkpoint from models/checkpoints."
            )

    unet_config = dict(configs.unet)
    unet_state_dict = convert_ldm_unet_checkpoint(checkpoint, unet_config)
    _check_keys(path, "UNet", set(unet_state_dict), _expected_keys(UNet2DConditionModel, unet_config))
    unet_state_dict = {key: value.to(dtype) for key, value in unet_state_dict.items()}

    text_config = CLIPTextConfig(**{k: v for k, v in configs.text_encoder.items() if not k.startswith("_")})
    text_state_dict = convert_ldm_clip_checkpoint(checkpoint)
    expected = _expected_keys(CLIPTextModel, text_config)
    _check_keys(path, "text encoder", set(text_state_dict), expected, ignore={POSITION_IDS})
    text_encoder = CLIPTextModel(text_config)
    text_encoder.load_state_dict({k: v for k, v in text_state_dict.items() if k in expected}, strict=False)
    text_encoder.to(dtype).eval().requires_grad_(False)

    tokenizer = EmptyPromptTokenizer(configs.bos_token_id, configs.eos_token_id, text_config.max_position_embeddings)
    return SD15Components(unet_state_dict, unet_config, text_encoder, tokenizer)


def load_vae_single_file(
    path: str | Path, dtype: torch.dtype = torch.float32, config: dict[str, Any] | None = None
) -> AutoencoderKL:
    """An `AutoencoderKL` from a VAE single file (LDM keys, optionally under `first_stage_model.`)."""
    path = Path(path)
    config = dict(config or shipped_config("sd_vae_ft_mse"))
    checkpoint = read_state_dict(path)
    if not any(".encoder.conv_in." in f".{key}" for key in checkpoint):
        raise ValueError(
            f"{path} has no VAE weights (no 'encoder.conv_in.*' keys); pick a VAE file from models/vae "
            "such as vae-ft-mse-840000-ema-pruned.safetensors"
        )
    state_dict = convert_ldm_vae_checkpoint(checkpoint, config)
    _check_keys(path, "VAE", set(state_dict), _expected_keys(AutoencoderKL, config))
    vae = AutoencoderKL.from_config(config)
    vae.load_state_dict(state_dict)
    return vae.to(dtype).eval().requires_grad_(False)
