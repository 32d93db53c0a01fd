"""Reading weight files safely: safetensors, or `torch.load(weights_only=True)`; never pickled code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """The tensors of a `.safetensors`, `.bin`, `.ckpt` or `.pt` file (a `state_dict` wrapper is unwrapped).

    Pickles that would need code to load are refused by `weights_only=True`; zip-format pickles are
    memory-mapped, so a 5 GB checkpoint is not read into memory twice.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file; check the path and the models folder")
    try:
        if path.suffix == ".safetensors":
            loaded: object = load_file(str(path))
        else:
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
                loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure here means the file itself is unusable
        raise ValueError(
            f"cannot read weights from {path}: {error}. The file may be truncated, corrupted or not a weights "
            "file (pickles that need code to load are refused on purpose); download it again (docs/models.md)."
        ) from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors")
    return {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}
