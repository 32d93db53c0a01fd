"""Registry integrity: every file has a source, size, sha256 (or a listed gap), licence and a safe target."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from magicanimate_core.registry import components, model_files, unverifiable_files
from magicanimate_core.single_file import CONFIG_DIR, shipped_config

# The visible gap: no published sha256 was found for these files (not LFS files). Keep this list in sync.
EXPECTED_WITHOUT_SHA256 = {"appearance_encoder/config", "densepose_controlnet/config"}
# Published LFS hashes of the weights files (Hugging Face / the detectron2 model zoo).
PUBLISHED_SHA256 = {
    "appearance_encoder/weights": "cb2e8f281d73eff5f9b7f0c94118496607cf5f29fc5b56535a19a8b68e79b619",
    "densepose_controlnet/weights": "f5e06b41bd614e84eba294ebf2fa868ef31ffc88fca33987938fde3ec0eb67a4",
    "temporal_attention/ckpt": "5e14b488d09569ddf5524cf6d671413b6fa6cf13ba2b1f304e5e965d2b997125",
    "densepose_rcnn/weights": "b8a7382001b16e453bad95ca9dbc68ae8f2b839b304cf90eaf5c27fbdb4dae91",
}


def test_every_entry_is_complete():
    comps = components()
    for item in model_files():
        assert item.component in comps and item.license
        assert item.url or (item.hf_repo and item.revision and item.path), item.id
        url = item.source_url("https://huggingface.co")
        assert url.startswith("https://") and url.endswith(item.path), item.id
        if item.sha256 is None:
            assert item.sha256_note, item.id
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", item.sha256), item.id
        if item.size is None:
            assert item.size_note, item.id
        else:
            assert item.size > 0


def test_missing_hashes_are_exactly_the_listed_gap():
    assert set(unverifiable_files()) == EXPECTED_WITHOUT_SHA256
    by_id = {item.id: item for item in model_files()}
    assert {file_id: by_id[file_id].sha256 for file_id in PUBLISHED_SHA256} == PUBLISHED_SHA256
    assert by_id["densepose_rcnn/weights"].size == 255_757_821


def test_targets_are_unique_relative_and_inside_models():
    targets = [item.target.format(model="m") for item in model_files()]
    assert len(set(targets)) == len(targets)
    for target in targets:
        path = PurePosixPath(target)
        assert not path.is_absolute() and ".." not in path.parts and "\\" not in target
        assert path.parts[0] in {"magicanimate", "densepose"}
    assert all(
        item.target.startswith("magicanimate/{model}/") for item in model_files() if item.component != "densepose_rcnn"
    )


def test_shipped_configs_are_byte_identical_to_registered_upstream_files():
    by_id = {item.id: item for item in model_files()}
    for name, file_id in (
        ("sd15_unet", "sd15/unet/config"),
        ("clip_vit_l14_text", "sd15/text_encoder/config"),
        ("sd_vae_ft_mse", "vae/config"),
    ):
        data = (CONFIG_DIR / f"{name}.json").read_bytes()
        assert len(data) == by_id[file_id].size and hashlib.sha256(data).hexdigest() == by_id[file_id].sha256


def test_shipped_configs_build_full_size_models():
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(shipped_config("sd15_unet"))
        vae = AutoencoderKL.from_config(shipped_config("sd_vae_ft_mse"))
        text = CLIPTextModel(
            CLIPTextConfig(**{k: v for k, v in shipped_config("clip_vit_l14_text").items() if not k.startswith("_")})
        )
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
    assert sum(p.numel() for p in text.parameters()) == 123_060_480
