"""The generated tiny DensePose R-CNN (`tests/tiny_densepose.py`): the released layout, and pinned outputs.

The pinned values were recorded once (torch 2.13 CPU, float32) by running the built-in R-CNN, which matches
detectron2's golden run, on the generated `.pkl` and the first frame of `walking_video()` (128x128, scaled
to 800x800 by the model): the detections at the default score threshold 0.05, boxes in frame pixels, and
the first instance's logits at box cell (50, 50).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from densepose_node.backends import load_estimator
from densepose_node.render import render_frame
from densepose_node.weights import read_model_zoo_pickle
from tests.sample_media import walking_video
from tests.tiny_densepose import tensor_shapes, tiny_state

SCORES = [0.0944, 0.0683, 0.0654, 0.0582, 0.0552, 0.0523]
BOXES = [
    [36.91, 80.5, 38.23, 84.79],
    [37.66, 117.34, 128.0, 118.08],
    [0.0, 33.07, 97.83, 36.37],
    [30.88, 103.22, 123.94, 104.56],
    [37.23, 75.08, 58.15, 82.79],
    [34.8, 106.59, 126.44, 107.36],
]
FINE_FIRST_THREE = [-0.1738, -0.7276, 0.814]  # fine_segm[0, :3, 50, 50]
COARSE = [0.886, 0.9663]  # coarse_segm[0, :, 50, 50]
PAINTED_PIXELS = 478  # pixels the renderer colours (not DensePose background)


def test_pkl_holds_the_tensors_drawn(tiny_densepose_pkl):
    state = tiny_state()
    loaded = read_model_zoo_pickle(tiny_densepose_pkl)
    assert len(loaded) == 335 and loaded.keys() == state.keys()
    assert all(np.array_equal(loaded[name].numpy(), state[name]) for name in state)
    hand_set = ("objectness_logits.bias", "cls_score.bias")  # detection biases, zero for some classes
    drawn = [array for name, array in state.items() if not name.endswith(hand_set)]
    assert all(np.count_nonzero(array) == array.size for array in drawn)  # every path matters


def test_layout_equals_the_golden_model(golden_dir):
    manifest = json.loads((golden_dir / "densepose" / "weights" / "param_manifest.json").read_text())
    assert tensor_shapes() == {name: tuple(shape) for name, shape in manifest["params"]}


@pytest.fixture(scope="module")
def detections(tiny_densepose_pkl):
    torch.set_num_threads(2)
    estimator = load_estimator("builtin", tiny_densepose_pkl)
    [instances] = estimator.detect([walking_video(1)[0]])
    return instances


def test_detections_match_the_recorded_run(detections):
    assert len(detections) == len(SCORES)
    assert torch.allclose(detections.scores, torch.tensor(SCORES), atol=1e-3)
    assert torch.allclose(detections.boxes_xyxy, torch.tensor(BOXES), atol=0.05)
    assert torch.allclose(detections.fine_segm[0, :3, 50, 50], torch.tensor(FINE_FIRST_THREE), atol=1e-3)
    assert torch.allclose(detections.coarse_segm[0, :, 50, 50], torch.tensor(COARSE), atol=1e-3)


def test_rendering_paints_several_parts(detections):
    picture = render_frame(detections)
    painted = int((picture != [68, 1, 84]).any(-1).sum())
    assert abs(painted - PAINTED_PIXELS) <= 10
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) >= 10
