"""Weight-loading refusals name the file, the cause and a fix, and never suggest `weights_only=False`."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from magicanimate_core.loading import load_models
from magicanimate_core.weights_io import WeightsFileError, read_config, read_state_dict

FIX = (
    "Delete it and download it again (sources in docs/models.md), or check every model file with "
    "`python -m magicanimate_core verify --models-dir <ComfyUI/models>`."
)


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def hostile_torch_file(path: Path, marker: Path) -> None:
    torch.save({"text_model.embeddings.token_embedding.weight": Exploit(marker)}, path)


@pytest.mark.parametrize(
    ("relative", "damage", "cause"),
    [
        (
            "stable-diffusion-v1-5/text_encoder/pytorch_model.bin",
            "hostile",
            "refused: not a checkpoint of plain tensors (it asks to import posix.system); the file is corrupted, "
            "not a weights file, or was tampered with (nothing in it was run).",
        ),
        (
            "stable-diffusion-v1-5/unet/diffusion_pytorch_model.bin",
            b"garbage, not a checkpoint",
            "refused: not a checkpoint of plain tensors (Unsupported operand 103); the file is corrupted, not a "
            "weights file, or was tampered with (nothing in it was run).",
        ),
        (
            "MagicAnimate/densepose_controlnet/diffusion_pytorch_model.safetensors",
            "truncate",
            # safetensors words it "deserializing header" for a mapped file and "deserializing" for bytes read
            "truncated or corrupted safetensors file (Error while deserializing",
        ),
        (
            "MagicAnimate/temporal_attention/temporal_attention.ckpt",
            "truncate",
            "truncated or not a PyTorch checkpoint (",
        ),
        (
            "MagicAnimate/appearance_encoder/config.json",
            b"{not json",
            "not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2).",
        ),
        (
            "sd-vae-ft-mse/config.json",
            b"<html>rate limited</html>",
            "not valid JSON (Expecting value at line 1, column 1).",
        ),
    ],
)
def test_bad_model_files_are_named_with_cause_and_fix(tiny_pretrained_dir, tmp_path, relative, damage, cause):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_pretrained_dir, model_dir)
    target, marker = model_dir / relative, tmp_path / "pwned"
    if damage == "hostile":
        hostile_torch_file(target, marker)
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    else:
        target.write_bytes(damage)
    before = files_of(model_dir)
    with pytest.raises(WeightsFileError) as error:
        load_models(model_dir)
    message = str(error.value)
    kind = "config" if target.suffix == ".json" else "weights from"
    assert message.startswith(f"cannot read {kind} {target}: {cause}"), message
    assert message.endswith(FIX)
    assert "weights_only" not in message and "False" not in message
    assert not marker.exists()
    assert files_of(model_dir) == before  # nothing written, converted or left behind


def test_state_dict_and_config_readers(tmp_path):
    marker = tmp_path / "pwned"
    legacy = tmp_path / "legacy.ckpt"
    legacy.write_bytes(pickle.dumps({"state_dict": Exploit(marker)}))
    with pytest.raises(WeightsFileError, match=r"Unsupported operand 149") as error:
        read_state_dict(legacy)
    assert "weights_only" not in str(error.value) and not marker.exists()

    array = tmp_path / "config.json"
    array.write_text("[1, 2]")
    with pytest.raises(WeightsFileError, match=r"it holds a JSON list, not an object\. Delete it"):
        read_config(array)

    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(WeightsFileError, match=rf"^{tensor} holds a Tensor, not a state dict of tensors\. Delete it"):
        read_state_dict(tensor)
