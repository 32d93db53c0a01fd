"""Built-in DensePose R-CNN vs the golden detectron2 run of the tiny R_50_FPN_s1x (its calibrated criteria)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from densepose_node.rcnn.model import DensePoseRCNN
from densepose_node.render import render_frame
from densepose_node.weights import load_weights
from tests.tiny_densepose import tiny_state

FRAMES = ["frame_00", "frame_01", "frame_02", "frame_03"]
FLOAT_REL = 1e-5  # max |diff| <= 1e-5 x max |golden| for features and logits
BOX_PX, SCORE = 1e-3, 1e-5


@pytest.fixture(scope="module")
def model(golden_dir, tmp_path_factory) -> DensePoseRCNN:
    """The tiny model, read from a copy of the golden pickle through the allow-list loader."""
    pkl = tmp_path_factory.mktemp("weights") / "tiny_densepose.pkl"
    shutil.copy(golden_dir / "densepose" / "weights" / "tiny_densepose.pkl", pkl)
    return DensePoseRCNN.from_state_dict(load_weights(pkl), source=str(pkl))


@pytest.fixture(scope="module")
def runs(model, golden_dir) -> dict:
    """Per frame: (instances, trace) of one forward pass."""
    results = {}
    for frame in FRAMES:
        image = load_file(golden_dir / "densepose" / "frames" / frame / "input_bgr.safetensors")["image_bgr"].numpy()
        trace: dict[str, torch.Tensor] = {}
        [instances] = model([image], trace=trace)
        results[frame] = instances, trace
    return results


def _rel(got: torch.Tensor, expected: torch.Tensor) -> float:
    return (got - expected).abs().max().item() / max(expected.abs().max().item(), 1e-30)


def test_intermediates_frame_00(runs, golden_dir):
    golden = load_file(golden_dir / "densepose" / "frames" / "frame_00" / "intermediates.safetensors")
    _, trace = runs["frame_00"]
    for key, expected in golden.items():
        got = trace[key]
        assert got.shape == expected.shape, key
        if key in ("rpn_proposal_boxes", "box_head_boxes_decoded"):
            assert (got - expected).abs().max().item() <= BOX_PX, key
        elif key == "box_head_scores":
            assert (got - expected).abs().max().item() <= SCORE, key
        else:
            assert _rel(got, expected) <= FLOAT_REL, key


@pytest.mark.parametrize("frame", FRAMES)
def test_instances_and_rendering(runs, golden_dir, frame):
    folder = golden_dir / "densepose" / "frames" / frame
    golden = load_file(folder / "instances.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    instances, trace = runs[frame]
    assert len(instances) == len(golden["scores"])
    assert instances.image_hw == tuple(manifest["original_hw"])
    assert (instances.boxes_xyxy - golden["pred_boxes"]).abs().max().item() <= BOX_PX
    assert (trace["pred_boxes_net"] - golden["pred_boxes_net"]).abs().max().item() <= BOX_PX
    assert (instances.scores - golden["scores"]).abs().max().item() <= SCORE
    xywh = torch.cat([instances.boxes_xyxy[:, :2], instances.boxes_xyxy[:, 2:] - instances.boxes_xyxy[:, :2]], 1)
    assert torch.equal(xywh.long(), golden["boxes_xywh_int"])
    for name in ("coarse_segm", "fine_segm"):
        got = getattr(instances, name)
        checksum = manifest["checksums_112"][name]
        if hashlib.sha256(got.numpy().astype("<f4").tobytes()).hexdigest() != checksum["sha256_float32_le"]:
            assert abs(got.double().sum().item() - checksum["sum_float64"]) <= 1e-5 * checksum["abs_sum_float64"]
    rendered = render_frame(instances)
    expected = np.load(folder / "rendered_bgr.npy")[..., ::-1]
    mismatched = int((rendered != expected).any(axis=-1).sum())
    near_ties = len(manifest["decision_margins"]["labels_near_tie_pixels"])
    assert mismatched <= near_ties, f"{mismatched} pixels differ ({near_ties} near-tie pixels allowed)"


def test_chart_logits_match_lowres(runs, golden_dir):
    """The 56x56 ConvTranspose outputs, via the 112x112 maps they upsample to."""
    import torch.nn.functional as F

    for frame in FRAMES:
        chart = load_file(golden_dir / "densepose" / "frames" / frame / "densepose_chart.safetensors")
        instances, _ = runs[frame]
        for name in ("coarse_segm", "fine_segm"):
            expected = F.interpolate(chart[f"{name}_lowres"], scale_factor=2, mode="bilinear", align_corners=False)
            assert _rel(getattr(instances, name), expected) <= FLOAT_REL, (frame, name)


def test_unknown_checkpoint_layout_is_named():
    state = {name: torch.from_numpy(array) for name, array in tiny_state().items()}
    del state["roi_heads.box_head.fc2.weight"]
    with pytest.raises(ValueError, match="mine.safetensors.*roi_heads.box_head.fc2.weight"):
        DensePoseRCNN.from_state_dict(state, source="mine.safetensors")
    state = {name: torch.from_numpy(array) for name, array in tiny_state().items()}
    state["roi_heads.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected.*roi_heads.extra.weight"):
        DensePoseRCNN.from_state_dict(state, source="mine.safetensors")
