"""The loader: real checkpoint layout, strict key accounting, clear errors, no pickled code executed."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from magicanimate_core.loading import (
    SD15_DIR,
    TEMPORAL_CKPT,
    TEMPORAL_DIR,
    CheckpointKeyError,
    MissingModelFilesError,
    load_models,
    load_unet,
    read_state_dict,
)


def copy_model_dir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_missing_files_are_listed_with_their_places(tiny_pretrained_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model_dir(tiny_pretrained_dir, tmp_path / "model")
    (model_dir / TEMPORAL_DIR / TEMPORAL_CKPT).unlink()
    shutil.rmtree(model_dir / "sd-vae-ft-mse")
    with pytest.raises(MissingModelFilesError) as error:
        load_models(model_dir)
    text = str(error.value)
    assert "temporal_attention.safetensors,temporal_attention.ckpt" in text
    assert str(model_dir / "sd-vae-ft-mse" / "config.json") in text
    assert "magicanimate_core download" in text


def test_truncated_checkpoint_is_named(tiny_pretrained_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model_dir(tiny_pretrained_dir, tmp_path / "model")
    ckpt = model_dir / TEMPORAL_DIR / TEMPORAL_CKPT
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"cannot read weights from {ckpt}.*truncated"):
        load_models(model_dir)


def test_unexpected_keys_are_an_error(tiny_pretrained_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model_dir(tiny_pretrained_dir, tmp_path / "model")
    weights = model_dir / SD15_DIR / "unet" / "diffusion_pytorch_model.bin"
    state = torch.load(weights, weights_only=True)
    state["down_blocks.0.resnets.0.surprise.weight"] = torch.zeros(1)
    torch.save(state, weights)
    with pytest.raises(CheckpointKeyError, match=r"1 unexpected keys \(first: \['down_blocks.0.resnets.0.surprise"):
        load_models(model_dir)


def test_pickled_code_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "temporal_attention.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    with pytest.raises(ValueError, match="cannot read weights"):
        read_state_dict(path)
    assert not marker.exists()


def test_motion_only_checkpoint_gives_the_same_unet(tiny_pretrained_dir: Path, tmp_path: Path) -> None:
    """Full UNet3D state dict vs `unet.`-prefixed motion keys only, when spatial weights agree with SD1.5."""
    import json

    full = torch.load(tiny_pretrained_dir / TEMPORAL_DIR / TEMPORAL_CKPT, weights_only=True)
    spatial = {k: v for k, v in full.items() if "motion_modules" not in k}
    config = json.loads((tiny_pretrained_dir / SD15_DIR / "unet" / "config.json").read_text())
    (tmp_path / "full").mkdir()
    (tmp_path / "motion").mkdir()
    torch.save(full, tmp_path / "full" / TEMPORAL_CKPT)
    torch.save({f"unet.{k}": v for k, v in full.items() if "motion_modules" in k}, tmp_path / "motion" / TEMPORAL_CKPT)
    from_full = load_unet(config, spatial, "sd15", tmp_path / "full").state_dict()
    from_motion = load_unet(config, spatial, "sd15", tmp_path / "motion").state_dict()
    assert from_full.keys() == from_motion.keys()
    assert all(torch.equal(from_full[k], from_motion[k]) for k in from_full)


def test_checkpoint_without_motion_weights_is_rejected(tiny_pretrained_dir: Path, tmp_path: Path) -> None:
    import json

    config = json.loads((tiny_pretrained_dir / SD15_DIR / "unet" / "config.json").read_text())
    spatial = torch.load(tiny_pretrained_dir / SD15_DIR / "unet" / "diffusion_pytorch_model.bin", weights_only=True)
    torch.save(spatial, tmp_path / TEMPORAL_CKPT)
    with pytest.raises(CheckpointKeyError, match="lacks 560 motion-module weights"):
        load_unet(config, spatial, "sd15", tmp_path)
