"""The `pack` fixture: the whole pack imported as a package, exactly as ComfyUI would, without ComfyUI.

ComfyUI loads a pack with `spec_from_file_location(<name>, <pack>/__init__.py)` and the pack may only use
relative imports; this fixture does the same under the name `magicanimate_pack`, so node modules are
reachable as `magicanimate_pack.nodes.<module>` (and `pack.NODE_CLASS_MAPPINGS`).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_MODULE = "magicanimate_pack"


def load_pack(name: str = PACK_MODULE) -> ModuleType:
    """Import the pack root as package `name` (once; later calls return the same module)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, PACK_ROOT / "__init__.py", submodule_search_locations=[str(PACK_ROOT)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@pytest.fixture(scope="session")
def pack() -> ModuleType:
    return load_pack()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `node_key` runs once per key in NODE_CLASS_MAPPINGS.

    If the pack cannot be imported there are no keys (pytest then skips those tests as an empty parameter
    set); the import error itself is reported by any test that uses the `pack` fixture.
    """
    if "node_key" in metafunc.fixturenames:
        try:
            keys = sorted(load_pack().NODE_CLASS_MAPPINGS)
        except Exception:
            keys = []
        metafunc.parametrize("node_key", keys)
