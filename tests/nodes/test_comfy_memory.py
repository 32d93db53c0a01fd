"""The sampler's model inside ComfyUI's own memory manager (real ComfyUI 0.3.64 modules, in-process, CPU).

ComfyUI only unloads models for others on a GPU, so "a second model needs the memory" is played by
`free_memory`, the call `load_models_gpu` makes for every new model on a full device.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

PACK_ROOT = Path(__file__).resolve().parents[2]
COMFYUI = Path(os.environ.get("COMFYUI_DIR") or PACK_ROOT / ".cache" / "comfyui-0.3.64")


@pytest.fixture(scope="module")
def management():
    if not (COMFYUI / "comfy" / "model_management.py").is_file():
        pytest.skip(f"no ComfyUI at {COMFYUI} (set COMFYUI_DIR or run tests/e2e/comfyui_setup.py)")
    before = set(sys.modules)
    sys.path.insert(0, str(COMFYUI))
    try:
        from comfy.cli_args import args

        args.cpu = True  # CPU torch: ComfyUI's device setup needs --cpu
        import comfy.model_management

        yield comfy.model_management
        comfy.model_management.unload_all_models()
    finally:
        sys.path.remove(str(COMFYUI))
        for name in set(sys.modules) - before:
            del sys.modules[name]


class TinyPipeline:
    """What the adapter needs of MagicAnimatePipeline: its networks, dtype and `.to`."""

    dtype = torch.float32

    def __init__(self) -> None:
        self.models = type("Models", (), {"modules": lambda _: [self.unet, self.vae]})()
        self.unet, self.vae = torch.nn.Linear(64, 64), torch.nn.Conv2d(4, 4, 3)
        self.moves: list[str] = []

    def to(self, device):
        self.moves.append(str(device))
        return self


def loaded(management, patcher) -> bool:
    return any(entry.model is patcher for entry in management.current_loaded_models)


def test_the_model_is_handed_to_comfyui_and_a_later_model_can_evict_it(management, pack):
    adapter = pack.nodes.comfy_adapter
    pipeline = TinyPipeline()
    adapter.load_model(pipeline, memory_required=0)
    patcher = pipeline.comfy_patcher
    assert loaded(management, patcher) and pipeline.moves == ["cpu"]
    assert patcher.model_size() == sum(p.numel() * 4 for m in (pipeline.unet, pipeline.vae) for p in m.parameters())
    adapter.release_model(pipeline, keep_loaded=True)
    assert loaded(management, patcher)  # kept for the next run

    from comfy.model_patcher import ModelPatcher

    other = ModelPatcher(torch.nn.Linear(8, 8), torch.device("cpu"), torch.device("cpu"))
    management.load_models_gpu([other], force_full_load=True)
    management.free_memory(1e30, torch.device("cpu"), keep_loaded=[management.LoadedModel(other)])
    assert not loaded(management, patcher) and loaded(management, other)  # ours went back to the offload device
    assert patcher.loaded_size() == 0

    adapter.load_model(pipeline, memory_required=0)  # the next run loads it again, through ComfyUI
    assert loaded(management, patcher) and pipeline.comfy_patcher is patcher
    adapter.release_model(pipeline, keep_loaded=False)  # keep_model_loaded off: unloaded at once
    assert not loaded(management, patcher) and patcher.loaded_size() == 0


def test_free_memory_keeps_the_model_being_checked(management, pack):
    adapter = pack.nodes.comfy_adapter
    pipeline = TinyPipeline()
    adapter.load_model(pipeline, memory_required=0)
    assert adapter.free_memory(10**15, torch.device("cpu"), keep=pipeline) is None  # the CPU is not checked
    assert loaded(management, pipeline.comfy_patcher)
