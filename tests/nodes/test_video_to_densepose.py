"""MagicAnimate_VideoToDensePose without ComfyUI, on the tiny DensePose R-CNN weights."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from densepose_node.backends import load_estimator
from densepose_node.extract import extract_densepose
from densepose_node.render import palette
from tests.nodes.fake_comfy import Interrupted, install
from tests.sample_media import walking_video

WEIGHTS = "tiny_densepose.pkl"


@pytest.fixture
def comfy(monkeypatch, tmp_path, pack, tiny_densepose_pkl):
    fake = install(monkeypatch, tmp_path)
    folder = fake.dir("models") / "densepose"
    folder.mkdir()
    shutil.copy(tiny_densepose_pkl, folder / WEIGHTS)
    pack.nodes.comfy_adapter.register_model_folder("densepose")
    return fake


@pytest.fixture
def frames() -> torch.Tensor:
    picture = walking_video(1)[0]
    pictures = [picture, picture[:, ::-1]]  # two frames: a picture of a walker and its mirror image
    return torch.from_numpy(np.stack(pictures)).float() / 255


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_VideoToDensePose"]()


def test_frames_match_the_library_and_report_progress(comfy, node, frames):
    (densepose,) = node.extract(frames, "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")
    assert densepose.shape == frames.shape
    estimator = load_estimator("builtin", comfy.dir("models") / "densepose" / WEIGHTS)
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


def test_list_hides_checksums_partial_downloads_and_converted_caches(comfy, pack, node):
    pack.nodes.comfy_adapter.register_model_folder("densepose", pack.nodes.video_to_densepose.WEIGHTS_EXTENSIONS)
    folder = comfy.dir("models") / "densepose"
    for name in ("tiny_densepose.safetensors", "x.pkl.sha256", "big.pkl.part", "own.safetensors"):
        (folder / name).write_bytes(b"")
    assert node.INPUT_TYPES()["required"]["weights"][0] == ["own.safetensors", WEIGHTS]


def test_estimator_is_built_once_per_weights_file(comfy, pack, node, frames, monkeypatch):
    module = pack.nodes.video_to_densepose
    built = []
    real = module.load_estimator
    monkeypatch.setattr(module, "_estimators", {})
    monkeypatch.setattr(module, "load_estimator", lambda *a, **k: built.append(a) or real(*a, **k))
    first = node.extract(frames[:1], "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")
    again = node.extract(frames[:1], "builtin", WEIGHTS, 0.5, 0, "source", 512, "viridis")
    assert len(built) == 1 and first[0].shape == again[0].shape
    weights = comfy.dir("models") / "densepose" / WEIGHTS
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    node.extract(frames[:1], "builtin", WEIGHTS, 0.05, 0, "source", 512, "viridis")
    assert len(built) == 2  # a changed file (mtime) is loaded again


def test_the_pickle_is_hashed_once_when_converted_never_on_later_loads(tmp_path, tiny_densepose_pkl, monkeypatch):
    from densepose_node import weights as weights_module

    pickle = tmp_path / WEIGHTS
    pickle.write_bytes(tiny_densepose_pkl.read_bytes())
    hashed = []
    real = weights_module._sha256
    monkeypatch.setattr(weights_module, "_sha256", lambda path: hashed.append(path) or real(path))
    first = weights_module.load_weights(pickle)  # converts to tiny_densepose.safetensors, hashing the pickle
    again = weights_module.load_weights(pickle)  # reuses the conversion: size and mtime match
    assert len(hashed) == 1 and first.keys() == again.keys()
    os.utime(pickle, ns=(pickle.stat().st_atime_ns, pickle.stat().st_mtime_ns + 10**9))
    weights_module.load_weights(pickle)  # touched: same bytes, recognised by the hash
    assert len(hashed) == 2
