"""MagicAnimate_RetargetMotion without ComfyUI: synthetic DensePose bodies, tiny DensePose R-CNN weights."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from bench.bodies import BUILDS, Pose, clip, dance, draw
from densepose_node.render import colorize, palette
from densepose_node.retarget import MODES, retarget_labels
from tests.nodes.fake_comfy import Interrupted, install
from tests.sample_media import walking_video

WEIGHTS = "tiny_densepose.pkl"
SIZE = (128, 128)


@pytest.fixture
def comfy(monkeypatch, tmp_path, pack, tiny_densepose_pkl):
    fake = install(monkeypatch, tmp_path)
    folder = fake.dir("models") / "densepose"
    folder.mkdir()
    os.symlink(tiny_densepose_pkl, folder / WEIGHTS)
    pack.nodes.comfy_adapter.register_model_folder("densepose")
    return fake


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_RetargetMotion"]()


@pytest.fixture(scope="module")
def bodies() -> tuple[np.ndarray, np.ndarray]:
    """(reference part indices [H, W], motion part indices [F, H, W]) of two differently built bodies."""
    reference = draw(replace(BUILDS["long-limbed"], unit=75.0), Pose((62.0, 60.0)), SIZE)
    motion = clip(replace(BUILDS["stocky"], unit=55.0), dance(5, (50.0, 66.0), 55.0), SIZE)
    return reference, motion


def image(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).float() / 255


def photo() -> torch.Tensor:
    return image(np.full((1, *SIZE, 3), 128, np.uint8))


@pytest.mark.parametrize("colormap", ["viridis", "parula-black"])
def test_matches_the_library_with_reference_densepose(comfy, node, bodies, colormap):
    reference, motion = bodies
    (out,) = node.retarget(
        image(colorize(motion, colormap)), photo(), "parts", WEIGHTS, image(colorize(reference, colormap)[None])
    )
    expected = colorize(retarget_labels(reference, motion, "parts"), colormap)
    assert np.array_equal((out * 255).round().to(torch.uint8).numpy(), expected)
    assert [value for value, _, _ in comfy.progress] == list(range(1, 2 * len(motion) + 1))
    assert {total for _, total, _ in comfy.progress} == {2 * len(motion)}


def test_modes_and_align_frame(comfy, node, bodies):
    reference, motion = bodies
    assert set(node.INPUT_TYPES()["required"]["mode"][0]) == set(MODES)
    assert node.INPUT_TYPES()["required"]["mode"][1]["default"] == "parts"
    frames = image(colorize(motion))
    (unchanged,) = node.retarget(frames, photo(), "off", WEIGHTS)
    assert unchanged is frames
    (out,) = node.retarget(frames, photo(), "global", WEIGHTS, image(colorize(reference)[None]), 2)
    expected = colorize(retarget_labels(reference, motion, "global", align_frame=2))
    assert np.array_equal((out * 255).round().to(torch.uint8).numpy(), expected)


def test_estimates_the_reference_with_the_weights(comfy, node):
    picture = Image.fromarray(walking_video(1)[0])
    reference = image(np.asarray(picture.resize(SIZE))[None])
    motion = image(colorize(clip(BUILDS["average"], dance(3, (50.0, 66.0), 55.0), SIZE)))
    (out,) = node.retarget(motion, reference, "parts", WEIGHTS)  # tiny weights: some parts found, not a body
    assert out.shape == motion.shape
    colours = {tuple(c) for c in (out * 255).round().to(torch.uint8).reshape(-1, 3).tolist()}
    assert colours <= {tuple(c) for c in palette("viridis").tolist()}


def test_no_person_in_the_reference_names_the_fix(comfy, node, bodies):
    _, motion = bodies
    with pytest.raises(ValueError, match="no person found in the reference.*whole body.*reference_densepose"):
        node.retarget(image(colorize(motion)), photo(), "parts", WEIGHTS)  # a grey picture: nobody


@pytest.mark.parametrize("after", [0, 3, 7])  # before the start, while reading parts, while moving frames
def test_cancel_between_frames(comfy, node, bodies, after):
    reference, motion = bodies

    class Tripwire(list):
        def append(self, update) -> None:
            super().append(update)
            comfy.interrupted = len(self) >= after

    comfy.progress = Tripwire()
    comfy.interrupted = after == 0
    with pytest.raises(Interrupted):
        node.retarget(image(colorize(motion)), photo(), "parts", WEIGHTS, image(colorize(reference)[None]))
    assert len(comfy.progress) == after


def test_errors_name_the_input(comfy, node, bodies):
    reference, motion = bodies
    with pytest.raises(ValueError, match="reference_densepose is 1 image.*64x64 but the motion frames are 128x128"):
        node.retarget(image(colorize(motion)), photo(), "parts", WEIGHTS, image(colorize(reference)[None, :64, :64]))
    noise = image(np.random.default_rng(0).integers(0, 256, (2, *SIZE, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="do not look like DensePose"):
        node.retarget(noise, photo(), "parts", WEIGHTS, image(colorize(reference)[None]))
