"""MagicAnimate_VideoToDensePose without ComfyUI, on the tiny DensePose R-CNN weights."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from densepose_node.backends import load_estimator
from densepose_node.extract import extract_densepose
from densepose_node.render import palette
from tests.nodes.fake_comfy import Interrupted, install

WEIGHTS = "tiny_densepose.pkl"


@pytest.fixture
def comfy(monkeypatch, tmp_path, pack, golden_dir):
    fake = install(monkeypatch, tmp_path)
    folder = fake.dir("models") / "densepose"
    folder.mkdir()
    os.symlink(golden_dir / "densepose" / "weights" / WEIGHTS, folder / WEIGHTS)
    pack.nodes.comfy_adapter.register_model_folder("densepose")
    return fake


@pytest.fixture
def frames(golden_dir) -> torch.Tensor:
    picture = np.asarray(Image.open(golden_dir / "densepose" / "frames" / "frame_00" / "input_rgb.png"))
    pictures = [picture, picture[:, ::-1]]  # two frames: the golden picture and its mirror image
    return torch.from_numpy(np.stack(pictures)).float() / 255


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_VideoToDensePose"]()


def test_frames_match_the_library_and_report_progress(comfy, node, frames, golden_dir):
    (densepose,) = node.extract(frames, "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")
    assert densepose.shape == frames.shape
    estimator = load_estimator("builtin", golden_dir / "densepose" / "weights" / WEIGHTS)
    uint8 = (frames * 255).round().to(torch.uint8).numpy()
    expected = np.stack(list(extract_densepose(uint8, estimator)))
    assert np.array_equal((densepose * 255).round().to(torch.uint8).numpy(), expected)
    assert [value for value, _, _ in comfy.progress] == [1, 2]


def test_square_output_uses_palette_colours_only(comfy, node, frames):
    (densepose,) = node.extract(frames, "auto", WEIGHTS, 0.05, 1, "pad", 64, "parula-black", True)
    assert densepose.shape == (2, 64, 64, 3)
    colours = {tuple(c) for c in (densepose * 255).round().to(torch.uint8).reshape(-1, 3).tolist()}
    assert colours <= {tuple(c) for c in palette("parula-black").tolist()}


def test_cancel_between_frames(comfy, node, frames):
    comfy.interrupted = True
    with pytest.raises(Interrupted):
        node.extract(frames, "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")


def test_errors_name_the_fix(comfy, node, frames):
    with pytest.raises(FileNotFoundError, match="'nope.pkl' is not in the models/densepose folder"):
        node.extract(frames, "builtin", "nope.pkl", 0.05, 0, "source", 512, "viridis")
    with pytest.raises(ValueError, match="no frames"):
        node.extract(frames[:0], "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")


def test_weights_are_listed_from_models_densepose(comfy, node):
    assert node.INPUT_TYPES()["required"]["weights"][0] == [WEIGHTS]
