"""Without ComfyUI the adapter degrades: node definitions still build, progress and cancel are no-ops."""

from __future__ import annotations

import sys
import types

import pytest


@pytest.fixture
def adapter(pack, monkeypatch):
    for name in ("folder_paths", "comfy", "comfy.utils", "comfy.model_management", "comfy.cli_args"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError
    return pack.nodes.comfy_adapter


def test_without_comfyui(adapter, pack):
    assert adapter.input_files(frozenset({".png"})) == [] and adapter.model_files("checkpoints") == []
    adapter.register_model_folder("magicanimate")
    assert adapter.model_folders("magicanimate") == []  # registering without ComfyUI records nothing
    bar = adapter.progress_bar(3)
    assert isinstance(bar, adapter._NoProgress) and bar.update_absolute(1, 3, None) is None
    assert adapter.metadata_enabled() is True and adapter.preview_size() is None
    assert str(adapter.offload_device()) == "cpu"
    with pytest.raises(RuntimeError, match="folder_paths is not importable"):
        adapter.input_directory()
    for key, node in pack.NODE_CLASS_MAPPINGS.items():
        assert node.INPUT_TYPES()["required"], key


def test_interrupts_are_read_only_inside_comfyui(adapter, monkeypatch):
    """comfy.model_management alone (without ComfyUI's folder_paths) is never asked about Cancel."""
    asked = []
    management = types.SimpleNamespace(throw_exception_if_processing_interrupted=lambda: asked.append(True))
    monkeypatch.setitem(sys.modules, "comfy.model_management", management)
    adapter.throw_if_interrupted()
    assert asked == []
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace())
    adapter.throw_if_interrupted()
    assert asked == [True]
