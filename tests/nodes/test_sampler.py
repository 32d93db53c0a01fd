"""MagicAnimate_Sampler and _ModelLoader without ComfyUI: progress, previews, cancel, errors, caching, parity."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from magicanimate_core.pipeline import StepInfo
from tests.nodes.fake_comfy import Interrupted, install


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    return install(monkeypatch, tmp_path)


@pytest.fixture
def nodes(pack):
    return pack.NODE_CLASS_MAPPINGS


@pytest.fixture
def loader_module(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.model_loader")


class FakePipeline:
    """Records its calls and devices; reports two steps of two UNet calls like the real pipeline."""

    def __init__(self) -> None:
        self.devices: list[str] = []
        self.kwargs: dict = {}

    def to(self, device):
        self.devices.append(str(device))
        return self

    def __call__(self, reference, motion, *, callback, **kwargs):
        self.kwargs = kwargs
        latents = torch.zeros((1, 4, motion.shape[0], motion.shape[1] // 8, motion.shape[2] // 8))
        for step in range(2):
            callback(StepInfo(step, 2, 1, 2))
            callback(StepInfo(step, 2, 2, 2, latents))
        return motion.flip(-1)


def run(nodes, pipeline, reference, motion, noise=None):
    return nodes["MagicAnimate_Sampler"]().sample(pipeline, reference, motion, 7, 2, 7.5, 16, 4, noise)


def test_progress_counts_unet_calls_and_previews_finished_steps(comfy, nodes):
    comfy.preview_method = "latent2rgb"
    pipeline, motion = FakePipeline(), torch.rand(3, 32, 24, 3)
    (frames,) = run(nodes, pipeline, torch.rand(1, 32, 24, 3), motion)
    assert torch.equal(frames, motion.flip(-1))
    assert [(value, total) for value, total, _ in comfy.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [preview for *_, preview in comfy.progress]
    assert previews[0] is None and previews[2] is None
    kind, image, size = previews[1]
    assert (kind, size) == ("JPEG", 512) and isinstance(image, Image.Image) and image.size == (24, 32)
    assert pipeline.kwargs["seed"] == 7 and "noise" not in pipeline.kwargs
    assert pipeline.devices == ["cpu", "cpu"]  # to the torch device, then back to the offload device


def test_previews_follow_comfyui_preview_method(comfy, nodes):
    run(nodes, FakePipeline(), torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3))
    assert all(preview is None for *_, preview in comfy.progress)


def test_cancel_stops_the_pipeline_and_releases_the_device(comfy, nodes):
    comfy.interrupted = True
    pipeline = FakePipeline()
    with pytest.raises(Interrupted):
        run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3))
    assert comfy.progress == [] and pipeline.devices == ["cpu", "cpu"]


def test_noise_latent_replaces_the_seed(comfy, nodes):
    pipeline, samples = FakePipeline(), torch.randn(5, 4, 2, 2)
    run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3), {"samples": samples})
    assert torch.equal(pipeline.kwargs["noise"], samples) and "seed" not in pipeline.kwargs


@pytest.mark.parametrize(
    "reference, motion, message",
    [
        (torch.rand(2, 16, 16, 3), torch.rand(2, 16, 16, 3), "reference holds 2 images"),
        (
            torch.rand(1, 64, 48, 3),
            torch.rand(2, 32, 32, 3),
            r"reference is 48x64 but the motion frames are 32x32; "
            r"set width=32, height=32 in 'Load Reference \(MagicAnimate\)'",
        ),
    ],
)
def test_bad_inputs_name_the_fix(comfy, nodes, reference, motion, message):
    with pytest.raises(ValueError, match=message):
        run(nodes, FakePipeline(), reference, motion)


def test_context_frames_are_capped_at_24(nodes):
    options = nodes["MagicAnimate_Sampler"].INPUT_TYPES()["required"]
    assert options["context_frames"][1]["max"] == 24 and options["seed"][1]["control_after_generate"] is True


@pytest.fixture
def tiny_model(comfy, pack, tiny_pretrained_dir):
    folder = comfy.dir("models") / "magicanimate"
    folder.mkdir()
    os.symlink(tiny_pretrained_dir, folder / "tiny")
    (folder / "not-a-model").mkdir()
    importlib.import_module(f"{pack.__name__}.nodes.comfy_adapter").register_model_folder("magicanimate")
    return "tiny"


def test_loader_lists_model_folders_and_caches(comfy, pack, nodes, loader_module, tiny_model, monkeypatch):
    loader = nodes["MagicAnimate_ModelLoader"]
    inputs = loader.INPUT_TYPES()
    assert inputs["required"]["model"][0] == ["tiny"]
    assert inputs["optional"]["sd15_checkpoint"][0] == ["(from model folder)"]
    loads = []
    monkeypatch.setattr(loader_module, "_cache", {})
    monkeypatch.setattr(
        f"{pack.__name__}.magicanimate_core.pipeline.MagicAnimatePipeline.from_pretrained",
        lambda folder, **kw: loads.append((folder, kw)) or FakePipeline(),
    )
    (first,) = loader().load("tiny", "auto")
    (again,) = loader().load("tiny", "auto")
    assert first is again and len(loads) == 1
    assert loads[0][1]["dtype"] == torch.float32 and str(loads[0][1]["device"]) == "cpu"
    (fp16,) = loader().load("tiny", "fp16")
    assert fp16 is not first and loads[1][1]["dtype"] == torch.float16
    weights = comfy.dir("models") / "magicanimate" / "edited" / "MagicAnimate" / "weights.bin"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"v1")
    (before,) = loader().load("edited", "fp32")
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    (after,) = loader().load("edited", "fp32")
    assert after is not before and len(loads) == 4  # a changed file inside the folder reloads the model
    with pytest.raises(FileNotFoundError, match="'missing.safetensors' is not in the models/checkpoints folder"):
        loader().load("tiny", "fp32", sd15_checkpoint="missing.safetensors")


def test_golden_case_a_through_the_nodes(comfy, nodes, tiny_model, golden_dir):
    """Reference + DensePose frames + injected noise -> the original implementation's frames."""
    case = golden_dir / "case_A"
    Image.open(case / "reference.png").save(comfy.dir("input") / "reference.png")
    reference, _ = nodes["MagicAnimate_LoadReference"]().load("reference.png", "none", 64, 64)
    motion = torch.from_numpy(np.load(case / "control.npy")).float() / 255
    noise = load_file(case / "inputs.safetensors")["init_noise"][0].permute(1, 0, 2, 3)  # -> [16, 4, 8, 8]
    (model,) = nodes["MagicAnimate_ModelLoader"]().load(tiny_model, "fp32")
    (frames,) = nodes["MagicAnimate_Sampler"]().sample(model, reference, motion, 0, 3, 7.5, 16, 4, {"samples": noise})
    golden = load_file(case / "outputs.safetensors")["video"]
    assert frames.shape == golden.shape
    assert float((frames - golden).abs().max()) <= 1e-3
