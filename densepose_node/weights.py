"""DensePose R-CNN weights: safe reading of model-zoo `.pkl` files and one-time conversion to safetensors.

The vid2densepose model is detectron2's `densepose_rcnn_R_50_FPN_s1x` (`model_final_162be9.pkl`, 255.7 MB).
Place it at `ComfyUI/models/densepose/model_final_162be9.pkl`. The file is a plain pickle of numpy arrays;
it is read with an allow-list unpickler that refuses every global except numpy's array reconstruction
(a tampered file cannot run code), converted once to `model_final_162be9.safetensors` beside it, and only
that file is read afterwards. Licence of the weights: CC BY-SA 3.0 (DensePose model zoo), i.e.
redistribution needs attribution and share-alike.
"""

from __future__ import annotations

import codecs
import collections
import hashlib
import math
import mmap
import os
import pickle
import pickletools
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .checkpoint_layout import layout_problem

WEIGHTS_FILENAME = "model_final_162be9.pkl"
WEIGHTS_URL = "https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl"
WEIGHTS_LICENSE = "CC BY-SA 3.0 (DensePose model zoo, facebookresearch/detectron2 projects/DensePose)"
WEIGHTS_FOLDER = "models/densepose"  # relative to the ComfyUI root
_REDOWNLOAD = f"Delete it and download it again from {WEIGHTS_URL}"

_SOURCE_SHA_KEY = "source_sha256"
_SOURCE_STAMP_KEY = "source_size_mtime"  # lets later loads skip hashing the 255 MB pickle
_NUMERIC_KINDS = "fiub"  # float, signed and unsigned integer, bool; never objects, strings or structures
# (module, name) -> what the unpickler hands out; numpy-1 pickles name `numpy.core`, numpy 2 `numpy._core`.
# Arrays and scalars get checking stand-ins: no array is allocated from a declared shape.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy.core.multiarray", "scalar"): "scalar",
    ("numpy._core.multiarray", "scalar"): "scalar",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
    ("collections", "OrderedDict"): "OrderedDict",
}


_OPCODES = {op.code.encode("latin1"): op for op in pickletools.opcodes}
_COUNT_WIDTHS = {  # length-prefixed arguments: prefix width in bytes, signed
    pickletools.TAKEN_FROM_ARGUMENT1: (1, False),
    pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, False),
    pickletools.TAKEN_FROM_ARGUMENT8U: (8, False),
}


class WeightsError(ValueError):
    """A weights file that cannot be used; the message names the file and what to do."""


class _NdarrayType:
    """Stands for `numpy.ndarray` in a pickle: only `_reconstruct` may use it; calling it is refused."""

    def __new__(cls, *args: object) -> _NdarrayType:
        raise pickle.UnpicklingError("refused direct numpy.ndarray construction (not a plain model-zoo pickle)")


class _PendingArray:
    """An array as the pickle declares it (shape, dtype, raw bytes); built only after every check passed."""

    def __init__(self, shape: object) -> None:
        self.shape, self.dtype, self.fortran, self.data = shape, None, False, None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("malformed numpy array state")
        self.shape, self.dtype, self.fortran, self.data = state[-4:]


def _reconstruct(subtype: object, shape: object, dtype: object) -> _PendingArray:
    if subtype is not _NdarrayType:
        raise pickle.UnpicklingError("refused array reconstruction of a type other than numpy.ndarray")
    return _PendingArray(shape)


def _raw_bytes(data: object) -> bytes | None:
    if isinstance(data, str):  # Python 2 pickles read with encoding="latin1"
        return data.encode("latin1")
    return data if isinstance(data, bytes) else None


def _scalar(dtype: object, data: object = None) -> object:
    raw = _raw_bytes(data)
    if not (isinstance(dtype, np.dtype) and dtype.kind in _NUMERIC_KINDS and raw is not None):
        raise pickle.UnpicklingError(f"refused numpy scalar of dtype {dtype!r}")
    if len(raw) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype} holds {len(raw)} bytes, not {dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype)[0]


def _allowed(module: str, name: str) -> object | None:
    return {
        "reconstruct": _reconstruct,
        "scalar": _scalar,
        "ndarray": _NdarrayType,
        "dtype": np.dtype,
        "encode": codecs.encode,
        "OrderedDict": collections.OrderedDict,
        None: None,
    }[_ALLOWED_GLOBALS.get((module, name))]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy-array globals; anything else raises `pickle.UnpicklingError`."""

    def find_class(self, module: str, name: str) -> object:
        found = _allowed(module, name)
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return found

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("refused persistent id (not a plain model-zoo pickle)")


def _check_lengths(data: bytes | mmap.mmap) -> None:
    """Walk the opcodes without reading their data: a string, bytes or integer opcode declaring more bytes
    than remain fails here, before the unpickler would reserve that much memory for it."""
    pos, size = 0, len(data)
    while pos < size:
        start, op = pos, _OPCODES.get(data[pos : pos + 1])
        if op is None:
            raise ValueError(f"unknown pickle opcode {data[pos]:#04x} at byte {pos}")
        pos += 1
        arg = op.arg
        if arg is None:
            pass
        elif arg.n >= 0:
            pos += arg.n
        elif arg.n == pickletools.UP_TO_NEWLINE:
            for _ in range(2 if arg is pickletools.stringnl_noescape_pair else 1):
                end = data.find(b"\n", pos)
                if end < 0:
                    raise ValueError(f"{op.name} at byte {start} has no end of line (truncated)")
                pos = end + 1
        else:
            width, signed = _COUNT_WIDTHS[arg.n]
            length = int.from_bytes(data[pos : pos + width], "little", signed=signed)
            pos += width
            if length < 0 or pos + length > size:
                raise ValueError(f"{op.name} at byte {start} declares {length} bytes but only {size - pos} remain")
            pos += length
        if op.name == "STOP":
            return
    raise ValueError("the pickle ends without its STOP opcode (truncated)")


def _declared(path: Path, name: str, pending: _PendingArray, file_size: int) -> tuple[int, ...]:
    """The checked shape of one declared array; refuses what the file cannot hold or the model cannot use."""
    shape, dtype = pending.shape, pending.dtype
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise WeightsError(f"{path}: tensor {name!r} declares an invalid shape {shape!r}; {_REDOWNLOAD}")
    count = math.prod(shape)
    known = isinstance(dtype, np.dtype)
    itemsize = dtype.itemsize if known else 1
    if count * itemsize > file_size:
        size = (
            f"{count} elements of {dtype}: {count * itemsize} bytes"
            if known
            else f"{count} elements: {count} bytes or more"
        )
        raise WeightsError(
            f"{path}: tensor {name!r} declares shape {list(shape)} ({size}), more than the whole {file_size}-byte "
            f"file holds; refused before allocating. {_REDOWNLOAD}"
        )
    if not known or dtype.kind not in _NUMERIC_KINDS or dtype.itemsize > 8:
        raise WeightsError(f"{path}: tensor {name!r} has dtype {dtype}, not a numeric array; {_REDOWNLOAD}")
    declared = count * itemsize
    raw = _raw_bytes(pending.data)
    if raw is None or len(raw) != declared:
        held = "no" if raw is None else len(raw)
        raise WeightsError(
            f"{path}: tensor {name!r} declares shape {list(shape)} of {dtype} ({declared} bytes) but holds {held} "
            f"bytes; {_REDOWNLOAD}"
        )
    return shape


def read_model_zoo_pickle(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a detectron2 model-zoo `.pkl` ({"model": {name: ndarray}, ...}) without executing code.

    Before any array is allocated, every declared shape and dtype is checked against the bytes the file
    holds and the names and shapes against the R_50_FPN_s1x layout (`checkpoint_layout`).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:  # an empty file: ValueError
                file_size = len(view)
                _check_lengths(view)
            loaded = _ArrayUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise WeightsError(
            f"{path}: not loaded, {error}. Only plain numpy-array pickles are accepted; this file may be "
            f"tampered with: download it again from {WEIGHTS_URL}"
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError) as error:
        raise WeightsError(
            f"{path}: truncated or not a pickle ({type(error).__name__}: {error}); download it again from {WEIGHTS_URL}"
        ) from None
    model = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(model, dict) or not model:
        raise WeightsError(f"{path}: no 'model' dict of tensors in this pickle; expected a detectron2 model-zoo file")
    for name, value in model.items():
        if not isinstance(value, _PendingArray):
            raise WeightsError(f"{path}: entry {name!r} is {type(value).__name__}, not a numeric array")
    problem = layout_problem({str(name): _declared(path, str(name), value, file_size) for name, value in model.items()})
    if problem is not None:
        raise WeightsError(f"{path}: {problem}; this is not the DensePose model file. {_REDOWNLOAD}")
    return {str(name): _tensor(value) for name, value in model.items()}


def _tensor(pending: _PendingArray) -> torch.Tensor:
    """float32 copy of a checked array (C order); the raw bytes are released as soon as they are copied."""
    raw, pending.data = _raw_bytes(pending.data), None
    array = np.frombuffer(raw, dtype=pending.dtype).reshape(pending.shape, order="F" if pending.fortran else "C")
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))


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


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _cached_conversion(cache: Path, source: Path) -> dict[str, torch.Tensor] | None:
    """The converted tensors if `cache` exists, is readable and was made from `source`.

    It was when it records `source`'s size and mtime (no hashing), or else `source`'s SHA-256.
    """
    if not cache.is_file():
        return None
    try:
        with safe_open(str(cache), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get(_SOURCE_STAMP_KEY) != _stamp(source) and metadata.get(_SOURCE_SHA_KEY) != _sha256(source):
                return None
        return load_file(str(cache))
    except (SafetensorError, OSError, ValueError):
        return None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict from a `.safetensors` file, or from a model-zoo `.pkl` via its converted sibling.

    A `.pkl` is converted once to `<stem>.safetensors` in the same folder (temporary file + atomic rename);
    the conversion is reused while it records the `.pkl`'s size and mtime (no re-hashing) or SHA-256. In a
    read-only folder the tensors are used from memory, with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found; download {WEIGHTS_URL} into ComfyUI/{WEIGHTS_FOLDER}/")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    cache = path.with_suffix(".safetensors")
    cached = _cached_conversion(cache, path)
    if cached is not None:
        return cached
    source_sha, source_stamp = _sha256(path), _stamp(path)
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
        metadata = {_SOURCE_SHA_KEY: source_sha, _SOURCE_STAMP_KEY: source_stamp, "source": path.name}
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, cache)
    except OSError as error:
        warnings.warn(
            f"could not write {cache} ({error}); converting {path.name} in memory on every load", stacklevel=2
        )
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return tensors
