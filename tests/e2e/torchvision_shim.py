"""Test-harness only: makes PyPI's CUDA-built torchvision importable next to a CPU-only torch.

ComfyUI imports torchvision at startup. The PyPI torchvision 0.28.0 wheel carries a `_C` extension linked
against CUDA libraries that a CPU torch lacks; loading it fails silently, and torchvision's meta
registrations then fail with "operator torchvision::nms does not exist". This module, installed into the
test virtual environment's site-packages with a `.pth` line by `comfyui_setup.py`, watches for the first
`import torchvision`. Only then (torch is not imported at interpreter start) it tries torchvision's own
`_C`; if that cannot load, it defines the two op schemas torchvision registers fakes for, so pure-Python
torchvision works (its C++ ops still raise "Couldn't load custom C++ ops").

The MagicAnimate pack itself never needs torchvision or this shim.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path
from typing import Any

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: Any = None  # keeps the torch.library.Library alive: dropping it would remove the schemas


def _has_nms(torch: Any) -> bool:
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute lookup is the probe
    except (AttributeError, RuntimeError):
        return False
    return True


def _try_native_ops(torch: Any, package_dir: Path) -> None:
    for candidate in sorted(package_dir.glob("_C*")):
        if candidate.suffix in {".so", ".pyd", ".dylib"}:
            try:
                torch.ops.load_library(str(candidate))
            except (OSError, RuntimeError):
                pass
            return


def ensure_torchvision_schemas(package_dir: Path | None) -> None:
    """Define `torchvision::nms`/`qnms` unless torchvision's own extension provides them."""
    global _library
    import torch

    if _has_nms(torch):
        return
    if package_dir is not None:
        _try_native_ops(torch, package_dir)
        if _has_nms(torch):
            return
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)


class _TorchvisionWatcher(importlib.abc.MetaPathFinder):
    """Acts once, on the first `import torchvision`, then leaves the import to the normal finders."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname != "torchvision":
            return None
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]
        spec = importlib.machinery.PathFinder.find_spec(fullname)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        try:
            ensure_torchvision_schemas(Path(locations[0]) if locations else None)
        except Exception as error:  # never break an unrelated import; torchvision reports its own error
            print(f"[torchvision shim] could not define torchvision op schemas: {error}", file=sys.stderr)
        return None


def install() -> None:
    if "torchvision" in sys.modules:
        return
    if not any(isinstance(finder, _TorchvisionWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionWatcher())


install()
