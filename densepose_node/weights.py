"""DensePose R-CNN weights: safe reading of model-zoo `.pkl` files and one-time conversion to safetensors.

The vid2densepose model is detectron2's `densepose_rcnn_R_50_FPN_s1x` (`model_final_162be9.pkl`, 255.7 MB).
Place it at `ComfyUI/models/densepose/model_final_162be9.pkl`. The file is a plain pickle of numpy arrays;
it is read with an allow-list unpickler that refuses every global except numpy's array reconstruction
(a tampered file cannot run code), converted once to `model_final_162be9.safetensors` beside it, and only
that file is read afterwards. Licence of the weights: CC BY-SA 3.0 (DensePose model zoo), i.e.
redistribution needs attribution and share-alike.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

WEIGHTS_FILENAME = "model_final_162be9.pkl"
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
WEIGHTS_LICENSE = "CC BY-SA 3.0 (DensePose model zoo, facebookresearch/detectron2 projects/DensePose)"
WEIGHTS_FOLDER = "models/densepose"  # relative to the ComfyUI root

_SOURCE_SHA_KEY = "source_sha256"
# (module, name) -> where numpy 2 keeps it; numpy-1 pickles name `numpy.core`, numpy 2 `numpy._core`.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
    ("numpy", "ndarray"): (None, "ndarray"),
    ("numpy", "dtype"): (None, "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("collections", "OrderedDict"): ("collections", "OrderedDict"),
}


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and what to do."""


def _allowed(module: str, name: str) -> object | None:
    where = _ALLOWED_GLOBALS.get((module, name))
    if where is None:
        return None
    home, attr = where
    if home == "multiarray":
        core = getattr(np, "_core", None) or importlib.import_module("numpy.core")
        return getattr(core.multiarray, attr)
    return getattr(np if home is None else importlib.import_module(home), attr)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy-array globals; anything else raises `pickle.UnpicklingError`."""

    def find_class(self, module: str, name: str) -> object:
        found = _allowed(module, name)
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return found

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("refused persistent id (not a plain model-zoo pickle)")


def read_model_zoo_pickle(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a detectron2 model-zoo `.pkl` ({"model": {name: ndarray}, ...}) without executing code."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = _ArrayUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path}: not loaded, {error}. Only plain numpy-array pickles are accepted; this file may be "
            f"tampered with: download it again from {WEIGHTS_URL}"
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError) as error:
        raise WeightsError(
            f"{path}: truncated or not a pickle ({type(error).__name__}: {error}); download it again from {WEIGHTS_URL}"
        ) from None
    model = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(model, dict) or not model:
        raise WeightsError(f"{path}: no 'model' dict of tensors in this pickle; expected a detectron2 model-zoo file")
    tensors = {}
    for name, value in model.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise WeightsError(f"{path}: entry {name!r} is {type(value).__name__}, not a numeric array")
        tensors[str(name)] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return tensors


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, with a clear error for damaged files."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(
            f"{path}: unreadable safetensors file ({error}); delete it (it is rebuilt from the .pkl) or download "
            f"the weights again"
        ) from None


def _cached_conversion(cache: Path, source_sha: str) -> dict[str, torch.Tensor] | None:
    """The converted tensors if `cache` exists, is readable and was made from the same source bytes."""
    if not cache.is_file():
        return None
    try:
        with safe_open(str(cache), framework="pt") as handle:
            if (handle.metadata() or {}).get(_SOURCE_SHA_KEY) != source_sha:
                return None
        return load_file(str(cache))
    except (SafetensorError, OSError, ValueError):
        return None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict from a `.safetensors` file, or from a model-zoo `.pkl` via its converted sibling.

    A `.pkl` is converted once to `<stem>.safetensors` in the same folder (temporary file + atomic rename);
    the conversion is reused while it records the `.pkl`'s SHA-256. In a read-only folder the tensors are
    used from memory, with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; download {WEIGHTS_URL} into ComfyUI/{WEIGHTS_FOLDER}/")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    source_sha = _sha256(path)
    cache = path.with_suffix(".safetensors")
    cached = _cached_conversion(cache, source_sha)
    if cached is not None:
        return cached
    tensors = read_model_zoo_pickle(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        warnings.warn(
            f"{path.parent} is not writable ({error}); converting {path.name} in memory on every load", stacklevel=2
        )
        return tensors
    try:
        os.close(descriptor)
        save_file(tensors, temporary, metadata={_SOURCE_SHA_KEY: source_sha, "source": path.name})
        os.replace(temporary, cache)
    except OSError as error:
        warnings.warn(
            f"could not write {cache} ({error}); converting {path.name} in memory on every load", stacklevel=2
        )
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return tensors
