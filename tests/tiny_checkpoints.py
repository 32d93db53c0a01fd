"""Write tiny MagicAnimate checkpoints from fixed seeds, in the real `pretrained_models/` layout and formats.

The tests use these files instead of a download, so a clone runs its whole suite without extra data:

```
stable-diffusion-v1-5/model_index.json, scheduler/scheduler_config.json
stable-diffusion-v1-5/text_encoder/{config.json, pytorch_model.bin}          torch pickle of the state dict
stable-diffusion-v1-5/tokenizer/{vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json}
stable-diffusion-v1-5/unet/{config.json, diffusion_pytorch_model.bin}        torch pickle (the original needs .bin)
sd-vae-ft-mse/{config.json, diffusion_pytorch_model.safetensors}
MagicAnimate/appearance_encoder/{config.json, diffusion_pytorch_model.safetensors}   pruned: 24 keys fewer
MagicAnimate/densepose_controlnet/{config.json, diffusion_pytorch_model.safetensors}
MagicAnimate/temporal_attention/temporal_attention.ckpt    torch.save of the FULL UNet3D OrderedDict state dict
```

Every model has SD1.5's structure at tiny widths (32 channels, 4 groups of 8, 8 heads of 4, a 522-token
vocabulary). Every parameter is drawn from a seeded CPU generator and is non-zero (the parts the real models
zero-initialise included), so every path changes the output: >=2-D weights N(0, 1/fan_in), 1-D `*.weight`
1 + 0.1 N(0, 1), biases 0.05 N(0, 1). The temporal checkpoint's spatial weights use a different seed from
the SD1.5 UNet's, so a loader that ignored them would change the output. Buffers (the motion modules'
sinusoidal position tables) keep their analytic values. The VAE decoder's `conv_out` is halved with a zero
bias so that decoded pixels are mostly inside [0, 1].
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from magicanimate_core.models import PRUNED_KEYS, UNet3DConditionModel

SEEDS = {"text_encoder": 101, "sd15_unet": 102, "temporal": 103, "appearance": 104, "controlnet": 105, "vae": 106}
WIDTHS = [32, 32, 32, 32]
DOWN_BLOCKS = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
UP_BLOCKS = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MERGES = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"),
          ("i", "n"), ("in", "g</w>"), ("e", "r</w>"), ("o", "n</w>")]

UNET_CONFIG: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.6.0",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": WIDTHS,
    "center_input_sample": False,
    "cross_attention_dim": 32,
    "down_block_types": DOWN_BLOCKS,
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 4,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": UP_BLOCKS,
}
# What the original's `save_pretrained` writes for the appearance encoder: the UNet config with diffusers'
# 0.21 defaults spelled out and the original's class name.
APPEARANCE_CONFIG: dict[str, Any] = {
    **UNET_CONFIG,
    "_class_name": "AppearanceEncoderModel",
    "_diffusers_version": "0.21.4",
    "_name_or_path": "pretrained_models/StableDiffusion/stable-diffusion-v1-5",
    "addition_embed_type": None,
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": None,
    "attention_type": "default",
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_norm": None,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "mid_block_only_cross_attention": None,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "projection_class_embeddings_input_dim": None,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": 1,
    "upcast_attention": False,
    "use_linear_projection": False,
}
# A stock diffusers 0.21 ControlNet config, as the real densepose_controlnet ships.
CONTROLNET_CONFIG: dict[str, Any] = {
    "_class_name": "ControlNetModel",
    "_diffusers_version": "0.21.4",
    "act_fn": "silu",
    "addition_embed_type": None,
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": None,
    "attention_head_dim": 8,
    "block_out_channels": WIDTHS,
    "class_embed_type": None,
    "conditioning_channels": 3,
    "conditioning_embedding_out_channels": [16, 16, 32, 32],
    "controlnet_conditioning_channel_order": "rgb",
    "cross_attention_dim": 32,
    "down_block_types": DOWN_BLOCKS,
    "downsample_padding": 1,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "global_pool_conditions": False,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 4,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "projection_class_embeddings_input_dim": None,
    "resnet_time_scale_shift": "default",
    "transformer_layers_per_block": 1,
    "upcast_attention": False,
    "use_linear_projection": False,
}
VAE_CONFIG: dict[str, Any] = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.21.4",
    "act_fn": "silu",
    "block_out_channels": WIDTHS,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 64,
    "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    "bos_token_id": 520,
    "eos_token_id": 521,
    "hidden_act": "quick_gelu",
    "hidden_size": 32,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 521,
    "projection_dim": 32,
    "torch_dtype": "float32",
    "transformers_version": "4.32.0",
    "vocab_size": 522,
}
# SD1.5's scheduler config, verbatim; MagicAnimate ignores it and builds its own DDIM.
SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.6.0",
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def _special_token(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


SPECIAL_TOKENS_MAP = {
    "bos_token": _special_token(BOS),
    "eos_token": _special_token(EOS),
    "pad_token": EOS,
    "unk_token": _special_token(EOS),
}
TOKENIZER_CONFIG = {
    "bos_token": {"__type": "AddedToken", **_special_token(BOS)},
    "clean_up_tokenization_spaces": True,
    "eos_token": {"__type": "AddedToken", **_special_token(EOS)},
    "errors": "replace",
    "model_max_length": 77,
    "pad_token": EOS,
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": {"__type": "AddedToken", **_special_token(EOS)},
}


def byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE uses for the bytes 0..255, in CLIP's vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [byte for byte in range(256) if byte not in printable]
    return [chr(code) for code in printable] + [chr(256 + index) for index in range(len(shifted))]


def vocabulary() -> dict[str, int]:
    """256 byte symbols, their `</w>` forms, one token per merge, then the two specials (ids 520, 521)."""
    symbols = byte_symbols()
    tokens = symbols + [f"{symbol}</w>" for symbol in symbols] + [left + right for left, right in MERGES] + [BOS, EOS]
    return {token: index for index, token in enumerate(tokens)}


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Redraw every parameter from `seed`: weights N(0, 1/fan_in), norm scales 1 + 0.1 N, biases 0.05 N."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() >= 2:
                parameter.copy_(noise / parameter[0].numel() ** 0.5)
            elif name.endswith("weight"):
                parameter.copy_(1 + 0.1 * noise)
            else:
                parameter.copy_(0.05 * noise)
    return module.eval()


def _write_json(path: Path, data: dict[str, Any], sort_keys: bool = True) -> None:
    """JSON as `save_pretrained` writes it: keys sorted (the verbatim SD1.5 scheduler config is not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n", encoding="utf-8")


def _save_safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()}, str(path), metadata={"format": "pt"})


def _save_pickle(path: Path, state: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict((key, value.contiguous()) for key, value in state.items()), path)


def write_sd15(root: Path) -> None:
    """`stable-diffusion-v1-5/`: index, scheduler, CLIP text encoder, tokenizer and UNet (.bin)."""
    folder = root / "stable-diffusion-v1-5"
    _write_json(folder / "model_index.json", MODEL_INDEX)
    _write_json(folder / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG, sort_keys=False)

    text_encoder = randomize(CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG)), SEEDS["text_encoder"])
    _write_json(folder / "text_encoder" / "config.json", TEXT_ENCODER_CONFIG)
    # The keys transformers 4 writes (`text_model.` prefix); transformers 5 names its modules without it.
    state = {key if key.startswith("text_model.") else f"text_model.{key}": value
             for key, value in text_encoder.state_dict().items()}
    _save_pickle(folder / "text_encoder" / "pytorch_model.bin", state)

    tokenizer = folder / "tokenizer"
    _write_json(tokenizer / "vocab.json", vocabulary())
    (tokenizer / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    _write_json(tokenizer / "tokenizer_config.json", TOKENIZER_CONFIG)
    _write_json(tokenizer / "special_tokens_map.json", SPECIAL_TOKENS_MAP)

    unet = randomize(UNet2DConditionModel.from_config(UNET_CONFIG), SEEDS["sd15_unet"])
    _write_json(folder / "unet" / "config.json", UNET_CONFIG)
    _save_pickle(folder / "unet" / "diffusion_pytorch_model.bin", unet.state_dict())


def write_vae(root: Path) -> None:
    vae = randomize(AutoencoderKL.from_config(VAE_CONFIG), SEEDS["vae"])
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(0.5)
        vae.decoder.conv_out.bias.zero_()
    _write_json(root / "sd-vae-ft-mse" / "config.json", VAE_CONFIG)
    _save_safetensors(root / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors", vae.state_dict())


def write_magicanimate(root: Path) -> None:
    """`MagicAnimate/`: pruned appearance encoder, DensePose ControlNet, full-UNet3D temporal checkpoint."""
    folder = root / "MagicAnimate"
    appearance = randomize(UNet2DConditionModel.from_config(APPEARANCE_CONFIG), SEEDS["appearance"])
    pruned = {key: value for key, value in appearance.state_dict().items() if key not in PRUNED_KEYS}
    _write_json(folder / "appearance_encoder" / "config.json", APPEARANCE_CONFIG)
    _save_safetensors(folder / "appearance_encoder" / "diffusion_pytorch_model.safetensors", pruned)

    controlnet = randomize(ControlNetModel.from_config(CONTROLNET_CONFIG), SEEDS["controlnet"])
    _write_json(folder / "densepose_controlnet" / "config.json", CONTROLNET_CONFIG)
    _save_safetensors(folder / "densepose_controlnet" / "diffusion_pytorch_model.safetensors", controlnet.state_dict())

    unet3d = randomize(UNet3DConditionModel(UNET_CONFIG), SEEDS["temporal"])
    _save_pickle(folder / "temporal_attention" / "temporal_attention.ckpt", unet3d.state_dict())


def write_pretrained_models(root: str | Path) -> Path:
    """Write the whole tiny `pretrained_models/` tree under `root` (created if needed) and return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_sd15(root)
    write_vae(root)
    write_magicanimate(root)
    return root


if __name__ == "__main__":
    import sys

    print(write_pretrained_models(sys.argv[1]))
