"""The generated tiny checkpoints (`tests/tiny_checkpoints.py`) have the real download's layout and formats."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file

from magicanimate_core.models import PRUNED_KEYS

FILES = {
    "stable-diffusion-v1-5/model_index.json",
    "stable-diffusion-v1-5/scheduler/scheduler_config.json",
    "stable-diffusion-v1-5/text_encoder/config.json",
    "stable-diffusion-v1-5/text_encoder/pytorch_model.bin",
    "stable-diffusion-v1-5/tokenizer/vocab.json",
    "stable-diffusion-v1-5/tokenizer/merges.txt",
    "stable-diffusion-v1-5/tokenizer/tokenizer_config.json",
    "stable-diffusion-v1-5/tokenizer/special_tokens_map.json",
    "stable-diffusion-v1-5/unet/config.json",
    "stable-diffusion-v1-5/unet/diffusion_pytorch_model.bin",
    "sd-vae-ft-mse/config.json",
    "sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
    "MagicAnimate/appearance_encoder/config.json",
    "MagicAnimate/appearance_encoder/diffusion_pytorch_model.safetensors",
    "MagicAnimate/densepose_controlnet/config.json",
    "MagicAnimate/densepose_controlnet/diffusion_pytorch_model.safetensors",
    "MagicAnimate/temporal_attention/temporal_attention.ckpt",
}
SD15_UNET = "stable-diffusion-v1-5/unet/diffusion_pytorch_model.bin"
TEMPORAL = "MagicAnimate/temporal_attention/temporal_attention.ckpt"
APPEARANCE = "MagicAnimate/appearance_encoder/diffusion_pytorch_model.safetensors"


def files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)


def test_layout_and_formats(tiny_pretrained_dir):
    assert files(tiny_pretrained_dir) == FILES
    temporal = torch.load(tiny_pretrained_dir / TEMPORAL, weights_only=True)
    assert type(temporal) is OrderedDict and len(temporal) == 1242  # the FULL UNet3D state dict, no prefix
    motion = [key for key in temporal if "motion_modules." in key]
    assert len(motion) == 560 and sum(key.endswith("pos_encoder.pe") for key in motion) == 40
    sd15 = torch.load(tiny_pretrained_dir / SD15_UNET, weights_only=True)
    assert len(sd15) == 682 and set(sd15) < set(temporal)
    assert not any(torch.equal(sd15[key], temporal[key]) for key in sd15)  # its spatial weights differ
    appearance = load_file(str(tiny_pretrained_dir / APPEARANCE))
    assert len(appearance) == 658 and not PRUNED_KEYS & set(appearance) and len(PRUNED_KEYS) == 24


def test_every_weight_is_drawn_non_zero(tiny_pretrained_dir):
    for name in sorted(FILES - {path for path in FILES if path.endswith((".json", ".txt"))}):
        for key, tensor in weights(tiny_pretrained_dir / name).items():
            if key == "decoder.conv_out.bias" or key.endswith("pos_encoder.pe"):  # zeroed / analytic sinusoid
                continue
            assert torch.count_nonzero(tensor) == tensor.numel(), f"{name}: {key}"


def test_same_files_configs_and_shapes_as_the_golden_checkpoints(tiny_pretrained_dir, golden_pretrained_dir):
    assert files(golden_pretrained_dir) == FILES
    for name in sorted(FILES):
        ours, theirs = tiny_pretrained_dir / name, golden_pretrained_dir / name
        if name.endswith((".json", ".txt")):
            assert ours.read_bytes() == theirs.read_bytes(), name
        else:
            mine, golden = weights(ours), weights(theirs)
            golden.pop("text_model.embeddings.position_ids", None)  # a buffer older transformers saved
            assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in golden.items()}, name
