"""MagicAnimate_SaveVideo without ComfyUI: naming, no overwrite, no partial file, metadata, preview dict."""

from __future__ import annotations

import json
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from magicanimate_core.media.video_io import FORMATS, read_video
from tests.nodes.fake_comfy import install

PROMPT = {"1": {"class_type": "MagicAnimate_SaveVideo", "inputs": {}}}
WORKFLOW = {"workflow": {"nodes": [], "version": 0.4}}


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    return install(monkeypatch, tmp_path)


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_SaveVideo"]


def frames(count: int = 6, height: int = 32, width: int = 48) -> torch.Tensor:
    return torch.rand((count, height, width, 3), generator=torch.Generator().manual_seed(0))


def save(node, images, fmt="h264-mp4", prefix="MagicAnimate/animation", fps=25.0, **hidden):
    return node().save(images, fps, prefix, fmt, 63, **hidden)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_decodes_with_the_right_frames(comfy, node, fmt):
    result = save(node, frames(), fmt, fps=10.0)  # GIF delays are whole centiseconds
    entry = result["ui"]["images"][0]
    assert result["ui"]["animated"] == (fmt != "gif",)  # the frontend plays "animated" outputs in a <video>
    path = comfy.dir("output") / "MagicAnimate" / f"animation_00001_{FORMATS[fmt][0]}"
    assert result["result"] == (str(path),)
    if fmt == "ffv1-mkv":  # no browser decodes FFV1: the node shows a small H.264 copy from temp/
        assert entry == {"filename": "animation_00001_.mp4", "subfolder": "magicanimate_previews", "type": "temp"}
        assert decode(comfy.dir("temp") / "magicanimate_previews" / entry["filename"])[:2] == (6, (48, 32))
    else:
        assert entry == {"filename": path.name, "subfolder": "MagicAnimate", "type": "output"}
    count, size, fps = decode(path)
    assert (count, size) == (6, (48, 32)) and fps == pytest.approx(10.0, rel=0.01)


def decode(path) -> tuple[int, tuple[int, int], float]:
    """(frames, (width, height), fps) of a saved video; Pillow reads animated WebP, which FFmpeg cannot."""
    if path.suffix == ".webp":
        with Image.open(path) as image:
            image.load()  # frame durations are known once a frame is decoded
            return image.n_frames, image.size, 1000 / image.info["duration"]
    info, decoded = read_video(path)
    return len(list(decoded)), (info.width, info.height), info.source_fps


def test_lossless_format_keeps_pixels(comfy, node):
    images = frames()
    result = save(node, images, "ffv1-mkv")
    _, decoded = read_video(result["result"][0])
    assert np.array_equal(np.stack(list(decoded)), (images * 255).round().to(torch.uint8).numpy())


def test_counter_never_overwrites(comfy, node, monkeypatch):
    first = save(node, frames())["result"][0]
    second = save(node, frames())["result"][0]
    assert first.endswith("animation_00001_.mp4") and second.endswith("animation_00002_.mp4")
    # another saver takes the counter ComfyUI handed out: that file is skipped, never replaced
    taken = comfy.dir("output") / "MagicAnimate" / "animation_00003_.mp4"
    taken.write_bytes(b"someone else's video")
    folder_paths = sys.modules["folder_paths"]
    stale = folder_paths.get_save_image_path("MagicAnimate/animation", str(comfy.dir("output")))
    monkeypatch.setattr(folder_paths, "get_save_image_path", lambda *_: (*stale[:2], 3, *stale[3:]))
    third = save(node, frames())["result"][0]
    assert third.endswith("animation_00004_.mp4") and taken.read_bytes() == b"someone else's video"


def test_prefix_with_subfolders_and_size(comfy, node):
    result = save(node, frames(), prefix="runs/%width%x%height%/clip")
    assert result["ui"]["images"][0] == {"filename": "clip_00001_.mp4", "subfolder": "runs/48x32", "type": "output"}


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/escape", "a/../../escape"])
def test_prefix_cannot_leave_the_output_folder(comfy, node, prefix):
    with pytest.raises(Exception, match="outside the output folder"):
        save(node, frames(), prefix=prefix)
    assert not list(comfy.root.parent.glob("escape*"))


def test_failure_leaves_no_file(comfy, node, monkeypatch):
    real = av.VideoFrame.from_ndarray
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder exploded")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(RuntimeError, match="encoder exploded"):
        save(node, frames())
    assert [p for p in comfy.dir("output").rglob("*") if p.is_file()] == []


def test_empty_batch_is_a_clear_error(comfy, node):
    with pytest.raises(ValueError, match="no frames"):
        save(node, torch.zeros((0, 32, 32, 3)))


def tags(path: str) -> dict[str, str]:
    with av.open(path) as container:
        return dict(container.metadata)


@pytest.mark.parametrize("fmt", ["h264-mp4", "vp9-webm", "ffv1-mkv"])
def test_prompt_and_workflow_are_embedded(comfy, node, fmt):
    path = save(node, frames(), fmt, prompt=PROMPT, extra_pnginfo=WORKFLOW)["result"][0]
    found = {key.lower(): value for key, value in tags(path).items()}
    assert json.loads(found["prompt"]) == PROMPT
    assert json.loads(found["workflow"]) == WORKFLOW["workflow"]


def test_disable_metadata_is_honoured(comfy, node):
    comfy.disable_metadata = True
    path = save(node, frames(), prompt=PROMPT, extra_pnginfo=WORKFLOW)["result"][0]
    assert not {"prompt", "workflow"} & {key.lower() for key in tags(path)}


def test_inputs_are_documented(node):
    required = node.INPUT_TYPES()["required"]
    assert list(required) == ["images", "fps", "filename_prefix", "format", "quality"]
    assert required["format"][0] == list(FORMATS) and required["format"][1]["default"] == "h264-mp4"
    assert node.INPUT_TYPES()["hidden"] == {
        "prompt": "PROMPT",
        "extra_pnginfo": "EXTRA_PNGINFO",
        "unique_id": "UNIQUE_ID",
    }
    assert node.OUTPUT_NODE is True
