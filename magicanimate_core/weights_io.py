"""Reading weight and config files safely: safetensors, or `torch.load(weights_only=True)`; never pickled code.

Every failure becomes a `WeightsFileError` naming the file, the cause in words and the fix (download the file
again, or check all files with `python -m magicanimate_core verify`). Loader messages are not passed on
verbatim: torch's suggests `weights_only=False`, which would run whatever code a tampered file holds.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

StateDict = dict[str, torch.Tensor]

FIX = (
    "Delete it and download it again (sources in docs/models.md), or check every model file with "
    "`python -m magicanimate_core verify --models-dir <ComfyUI/models>`"
)


_UNSAFE_ADVICE = re.compile(r"[^.\n]*weights_only[^.\n]*\.?")


class WeightsFileError(ValueError):
    """A weights or config file that cannot be used; the message names the file, the cause and the fix."""


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _refusal_detail(text: str) -> str:
    """What torch's weights-only unpickler objected to: a global it would import, or a pickle opcode."""
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    if found:
        return f"it asks to import {found.group(1)}"
    operand = re.search(r"Unsupported operand \d+", text)
    return operand.group(0) if operand else "unexpected pickle content"


def load_failure_cause(error: BaseException) -> str:
    """Why loading a file failed, in words; never the loader's advice to load it unsafely."""
    for link in _chain(error):
        text = str(link)
        if "Weights only load failed" in text:
            return (
                f"refused: not a checkpoint of plain tensors ({_refusal_detail(text)}); the file is corrupted, not "
                "a weights file, or was tampered with (nothing in it was run)"
            )
        if isinstance(link, SafetensorError) or "deserializing header" in text:
            return f"truncated or corrupted safetensors file ({text})"
        if isinstance(link, json.JSONDecodeError):
            return f"not valid JSON ({link.msg} at line {link.lineno}, column {link.colno})"
        if isinstance(link, (EOFError, pickle.UnpicklingError)) or "central directory" in text:
            first = text.strip().splitlines()[0] if text.strip() else "no data"
            return f"truncated or not a PyTorch checkpoint ({type(link).__name__}: {first})"
    first = str(error).strip().splitlines()[0] if str(error).strip() else "no details"
    return f"unreadable ({type(error).__name__}: {_UNSAFE_ADVICE.sub('', first).strip()})"


def read_config(path: str | Path) -> dict[str, Any]:
    """A model's `config.json` as a dict, or a `WeightsFileError` naming the file."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsFileError(f"cannot read config {path}: {load_failure_cause(error)}. {FIX}.") from None
    if not isinstance(config, dict):
        raise WeightsFileError(
            f"cannot read config {path}: it holds a JSON {type(config).__name__}, not an object. {FIX}."
        )
    return config


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
        raise WeightsFileError(f"cannot read weights from {path}: {load_failure_cause(error)}. {FIX}.") from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise WeightsFileError(f"{path} holds a {type(loaded).__name__}, not a state dict of tensors. {FIX}.")
    return {key: value for key, value in loaded.items() if isinstance(value, torch.Tensor)}
