"""Backend selection, the built-in estimator end to end, and detectron2 where it is installed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.torch import load_file

from densepose_node import backends
from densepose_node.backends import (
    BackendUnavailable,
    BuiltinEstimator,
    Detectron2Estimator,
    detectron2_available,
    load_estimator,
)
from densepose_node.weights import WeightsError


@pytest.fixture(scope="module")
def tiny_weights(tiny_densepose_pkl, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny_densepose.pkl"
    shutil.copy(tiny_densepose_pkl, path)
    return path


@pytest.fixture(scope="module")
def golden_weights(golden_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("golden_weights") / "tiny_densepose.pkl"
    shutil.copy(golden_dir / "densepose" / "weights" / "tiny_densepose.pkl", path)
    return path


def golden_frame(golden_dir, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """(input RGB, rendered RGB) of a golden frame."""
    folder = golden_dir / "densepose" / "frames" / frame
    bgr = load_file(folder / "input_bgr.safetensors")["image_bgr"].numpy()
    return bgr[..., ::-1], np.load(folder / "rendered_bgr.npy")[..., ::-1]


def test_missing_detectron2_gives_install_command(tiny_weights, monkeypatch):
    monkeypatch.setattr(backends, "detectron2_available", lambda: False)
    with pytest.raises(BackendUnavailable) as error:
        load_estimator("detectron2", tiny_weights)
    message = str(error.value)
    assert "detectron2" in message and "pip install" in message and "projects/DensePose" in message


def test_auto_falls_back_to_builtin(tiny_weights, monkeypatch):
    monkeypatch.setattr(backends, "detectron2_available", lambda: False)
    assert isinstance(load_estimator("auto", tiny_weights), BuiltinEstimator)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown DensePose backend 'onnx'"):
        load_estimator("onnx", "x.pkl")
    with pytest.raises(WeightsError, match="model_final_162be9.pkl"):
        load_estimator("builtin", None)


def test_builtin_render_matches_vid2densepose(golden_weights, golden_dir):
    estimator = load_estimator("builtin", golden_weights, score_threshold=0.05)
    frame, expected = golden_frame(golden_dir, "frame_01")
    assert np.array_equal(estimator.render(frame), expected)
    only_best = estimator.render(frame, max_people=1)
    assert not np.array_equal(only_best, expected)
    assert np.all(estimator.render(frame, score_threshold=0.5) == [68, 1, 84])


@pytest.mark.skipif(not detectron2_available(), reason="detectron2 + DensePose not installed (optional backend)")
def test_detectron2_backend_matches_golden(golden_weights, golden_dir):
    config = golden_dir / "densepose" / "config" / "tiny_densepose_config.yaml"
    estimator = Detectron2Estimator(golden_weights, "cpu", config_file=str(config))
    for name in ("frame_00", "frame_01"):
        frame, expected = golden_frame(golden_dir, name)
        assert np.array_equal(estimator.render(frame), expected)
