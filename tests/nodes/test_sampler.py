"""MagicAnimate_Sampler and _ModelLoader without ComfyUI: progress, previews, cancel, errors, caching, parity."""

from __future__ import annotations

import importlib
import os
import sys

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
def gpu(comfy, monkeypatch):
    """ComfyUI reporting a GPU torch device beside the CPU offload device (the fake pipeline allocates nothing)."""
    management = sys.modules["comfy.model_management"]
    monkeypatch.setattr(management, "get_torch_device", lambda: torch.device("cuda", 0))
    monkeypatch.setattr(management, "free_memory", lambda *args, **kwargs: None, raising=False)
    monkeypatch.setattr(management, "get_free_memory", lambda device: 2**40, raising=False)


@pytest.fixture
def loader_module(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.model_loader")


class FakePipeline:
    """Records its calls and devices; reports two steps of two UNet calls like the real pipeline."""

    dtype = torch.float32

    def __init__(self) -> None:
        self.devices: list[str] = []
        self.kwargs: dict = {}
        self.motion: torch.Tensor | None = None

    def estimate_device_bytes(self, height, width, context_frames, speedups, kept_feature_rows=0) -> int:
        self.kept_feature_rows = kept_feature_rows
        return 2**30

    def to(self, device):
        self.devices.append(str(device))
        return self

    def __call__(self, reference, motion, *, callback, **kwargs):
        self.kwargs, self.motion = kwargs, motion
        latents = torch.zeros((1, 4, motion.shape[0], motion.shape[1] // 8, motion.shape[2] // 8))
        for step in range(2):
            callback(StepInfo(step, 2, 1, 2))
            callback(StepInfo(step, 2, 2, 2, latents, latents + step + 1))
        return motion.flip(-1)


def run(nodes, pipeline, reference, motion, noise=None, **optional):
    return nodes["MagicAnimate_Sampler"]().sample(pipeline, reference, motion, 7, 2, 7.5, 16, 4, noise, **optional)


def test_progress_counts_unet_calls_and_previews_finished_steps(comfy, nodes, gpu):
    comfy.preview_method = "latent2rgb"
    pipeline, motion = FakePipeline(), torch.rand(3, 32, 24, 3)
    (frames,) = run(nodes, pipeline, torch.rand(1, 32, 24, 3), motion)
    assert torch.equal(frames, motion.flip(-1))
    assert [(value, total) for value, total, _ in comfy.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [preview for *_, preview in comfy.progress]
    assert previews[0] is None and previews[2] is None
    kind, image, size = previews[1]
    assert (kind, size) == ("JPEG", 512) and isinstance(image, Image.Image) and image.size == (9, 4)
    # ComfyUI's previewer gets the denoised estimate (pred_original_sample), 3 frames side by side
    assert [float(x0.mean()) for x0 in comfy.previewed] == [1.0, 2.0]
    assert comfy.previewed[0].shape == (1, 4, 4, 9)
    assert pipeline.kwargs["seed"] == 7 and "noise" not in pipeline.kwargs
    assert pipeline.devices == ["cuda:0", "cpu"]  # to the torch device, then back to the offload device


def test_previews_follow_comfyui_preview_method(comfy, nodes):
    run(nodes, FakePipeline(), torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3))
    assert all(preview is None for *_, preview in comfy.progress)


def test_cancel_stops_the_pipeline_and_releases_the_device(comfy, nodes, gpu):
    comfy.interrupted = True
    pipeline = FakePipeline()
    with pytest.raises(Interrupted):
        run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3))
    assert comfy.progress == [] and pipeline.devices == ["cuda:0", "cpu"]


def test_noise_latent_replaces_the_seed(comfy, nodes):
    pipeline, samples = FakePipeline(), torch.randn(5, 4, 2, 2)
    run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3), {"samples": samples})
    assert torch.equal(pipeline.kwargs["noise"], samples) and "seed" not in pipeline.kwargs


@pytest.mark.parametrize(
    "reference, motion, message",
    [
        (torch.rand(2, 16, 16, 3), torch.rand(2, 16, 16, 3), "reference holds 2 images"),
        (torch.rand(1, 64, 48, 3), torch.rand(2, 32, 32, 3), "unknown motion_fit 'zoom'; choose one of stretch"),
    ],
)
def test_bad_inputs_name_the_fix(comfy, nodes, reference, motion, message):
    with pytest.raises(ValueError, match=message):
        run(nodes, FakePipeline(), reference, motion, motion_fit="zoom")


def test_motion_of_another_size_is_fitted_to_the_reference(comfy, nodes):
    pipeline, motion = FakePipeline(), torch.rand(2, 16, 16, 3)
    (frames,) = run(nodes, pipeline, torch.rand(1, 64, 48, 3), motion)
    assert frames.shape == (2, 64, 48, 3) and pipeline.motion.shape == (2, 64, 48, 3)  # stretch by default
    run(nodes, pipeline, torch.rand(1, 16, 16, 3), motion, motion_fit="pad")
    assert pipeline.motion is motion  # equal sizes: untouched


def test_options_node_reaches_the_pipeline_and_defaults_change_nothing(comfy, nodes, pack):
    options_module = importlib.import_module(f"{pack.__name__}.magicanimate_core.options")
    SamplingOptions, Speedups = options_module.SamplingOptions, options_module.Speedups  # noqa: N806
    build = nodes["MagicAnimate_SamplerOptions"]().build
    defaults = {
        name: spec[1]["default"]
        for name, spec in nodes["MagicAnimate_SamplerOptions"].INPUT_TYPES()["required"].items()
    }
    (settings,) = build(**defaults)
    cpu = torch.device("cpu")
    assert settings.sampling == SamplingOptions() and settings.speedups(cpu) == Speedups.for_device(cpu)
    pipeline = FakePipeline()
    (options,) = build("dpmpp", "pyramid", False, 0.5, True, False, 1, True)
    run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3), options=options)
    assert pipeline.kwargs["options"] == SamplingOptions(False, "pyramid", "dpmpp", 0.5)
    speedups = pipeline.kwargs["speedups"]
    assert speedups.sequential_cfg and not speedups.offload and speedups.decode_batch_size == 1
    assert speedups.decode_threads == 1
    (threaded,) = build("ddim", "uniform", True, 1.0, False, False, 0, True, decode_threads=3)
    assert threaded.speedups(torch.device("cpu")).decode_threads == 3


def test_out_of_memory_preflight_runs_before_any_weight_moves(comfy, nodes, pack, monkeypatch):
    adapter = importlib.import_module(f"{pack.__name__}.nodes.comfy_adapter")
    asked = []
    monkeypatch.setattr(adapter, "free_memory", lambda needed, device, keep=None: asked.append(needed) or 2**20)
    pipeline = FakePipeline()
    with pytest.raises(MemoryError, match="1.0 GiB.*sequential_cfg=true, offload=true, decode_batch_size=1"):
        run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(2, 16, 16, 3))
    assert asked == [2**30] and pipeline.devices == [] and pipeline.kwargs == {}


def test_preflight_counts_the_features_deep_feature_reuse_keeps(comfy, nodes, pack, monkeypatch):
    adapter = importlib.import_module(f"{pack.__name__}.nodes.comfy_adapter")
    monkeypatch.setattr(adapter, "free_memory", lambda needed, device, keep=None: 2**20)
    build = nodes["MagicAnimate_SamplerOptions"]().build
    (options,) = build("ddim", "uniform", True, 1.0, False, False, 1, True, "", 2)
    pipeline = FakePipeline()
    with pytest.raises(MemoryError, match="deep_feature_reuse=0"):
        run(nodes, pipeline, torch.rand(1, 16, 16, 3), torch.rand(20, 16, 16, 3), options=options)
    assert pipeline.kept_feature_rows == 2 * 16 * 3  # 20 frames run as 32: three closed-loop windows


def test_context_frames_are_capped_at_24(nodes):
    options = nodes["MagicAnimate_Sampler"].INPUT_TYPES()["required"]
    assert options["context_frames"][1]["max"] == 24 and options["seed"][1]["control_after_generate"] is True


def link_model(comfy, pack, source) -> str:
    """Mount `source` as ComfyUI's models/magicanimate/tiny (beside a folder that is not a model)."""
    folder = comfy.dir("models") / "magicanimate"
    folder.mkdir()
    os.symlink(source, folder / "tiny")
    (folder / "not-a-model").mkdir()
    importlib.import_module(f"{pack.__name__}.nodes.comfy_adapter").register_model_folder("magicanimate")
    return "tiny"


@pytest.fixture
def tiny_model(comfy, pack, tiny_pretrained_dir):
    return link_model(comfy, pack, tiny_pretrained_dir)


@pytest.fixture
def golden_model(comfy, pack, golden_pretrained_dir):
    return link_model(comfy, pack, golden_pretrained_dir)


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


def test_golden_case_a_through_the_nodes(comfy, nodes, golden_model, golden_dir):
    """Reference + DensePose frames + injected noise -> the original implementation's frames."""
    case = golden_dir / "case_A"
    Image.open(case / "reference.png").save(comfy.dir("input") / "reference.png")
    reference, _, _ = nodes["MagicAnimate_LoadReference"]().load("reference.png", "none", 64, 64)
    motion = torch.from_numpy(np.load(case / "control.npy")).float() / 255
    noise = load_file(case / "inputs.safetensors")["init_noise"][0].permute(1, 0, 2, 3)  # -> [16, 4, 8, 8]
    (model,) = nodes["MagicAnimate_ModelLoader"]().load(golden_model, "fp32")
    (frames,) = nodes["MagicAnimate_Sampler"]().sample(model, reference, motion, 0, 3, 7.5, 16, 4, {"samples": noise})
    golden = load_file(case / "outputs.safetensors")["video"]
    assert frames.shape == golden.shape
    assert float((frames - golden).abs().max()) <= 1e-3


def test_moving_the_model_between_runs_logs_no_warning(comfy, nodes, tiny_model, monkeypatch):
    """diffusers warns on every `to(dtype=...)`, even dtype=None: moves name only the device."""
    from diffusers.models import modeling_utils

    (model,) = nodes["MagicAnimate_ModelLoader"]().load(tiny_model, "fp32")
    warned = []
    monkeypatch.setattr(modeling_utils.logger, "warning", lambda message, *a, **k: warned.append(message))
    for _ in range(2):
        model.to(torch.device("cpu"))
        model.to("cpu")
    assert warned == []


def test_devices_option_shares_windows_with_the_same_result(comfy, nodes, tiny_model):
    """`devices` on the options node: here the CPU twice (the model and a copy), on a machine with GPUs cuda:N."""
    options_node = nodes["MagicAnimate_SamplerOptions"]()
    defaults = {
        name: spec[1]["default"]
        for name, spec in nodes["MagicAnimate_SamplerOptions"].INPUT_TYPES()["required"].items()
    }
    (model,) = nodes["MagicAnimate_ModelLoader"]().load(tiny_model, "fp32")
    reference, motion = torch.rand(1, 32, 32, 3), torch.rand(40, 32, 32, 3)  # 40 frames: four windows

    def sample(**changes):
        (options,) = options_node.build(**{**defaults, **changes})
        return run(nodes, model, reference, motion, options=options)[0]

    alone, shared = sample(), sample(devices="cpu, cpu")
    assert float((alone - shared).abs().max()) <= 1e-3 and float((alone - shared).abs().mean()) <= 5e-5
    with pytest.raises(ValueError, match="offload keeps one network at a time on one device; it cannot share"):
        sample(devices="cpu,cpu", offload=True)
    with pytest.raises(ValueError, match="devices: 'gpu1' is not a device name"):
        options_node.build(**defaults, devices="gpu1")
