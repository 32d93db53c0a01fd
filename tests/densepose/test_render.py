"""Renderer: golden vid2densepose frames byte for byte, frozen LUTs, and the drawing rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from densepose_node.colormaps import PARULA, VIRIDIS
from densepose_node.instances import DensePoseInstances
from densepose_node.render import colorize, int_boxes_xywh, label_map, paint_labels, palette, render_frame

FRAMES = ["frame_00", "frame_01", "frame_02", "frame_03"]
# vid2densepose's viridis RGB colour of fine labels 0..24.
SPEC_VIRIDIS = (
    "440154 471063 481f70 472c7a 443983 404688 3b518b 365d8d 31688e 2c718e 287c8e 25858e 21908d "
    "1f9a8a 20a386 27ad81 35b779 46c06f 5cc863 73d056 8ed645 aadc32 c5e021 e2e418 fde725"
)
SPEC_PARULA = (
    "352a87 253ca3 1450c2 0461df 086edd 0e7ad8 1484d4 0f90d0 0b9ccb 06a6c6 16adb9 26b3ac 37b99f "
    "56bb90 72bd82 91bf74 aabd69 c0bc60 d8ba56 e4c04a f0c73c fcce2e fbdc24 faeb19 f9fb0e"
)


def _rgb(hex_list: str) -> np.ndarray:
    return np.array([list(bytes.fromhex(h)) for h in hex_list.split()], dtype=np.uint8)


def golden_instances(folder) -> DensePoseInstances:
    """Golden predictor outputs; the 112x112 maps are the stored 56x56 ones upsampled x2."""
    boxes = load_file(folder / "instances.safetensors")
    chart = load_file(folder / "densepose_chart.safetensors")
    height, width = np.load(folder / "rendered_bgr.npy").shape[:2]

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

    return DensePoseInstances(
        (height, width),
        boxes["pred_boxes"],
        boxes["scores"],
        up(chart["coarse_segm_lowres"]),
        up(chart["fine_segm_lowres"]),
    )


@pytest.mark.parametrize("frame", FRAMES)
def test_golden_frames_byte_exact(golden_dir, frame):
    folder = golden_dir / "densepose" / "frames" / frame
    instances = golden_instances(folder)
    expected_boxes = load_file(folder / "instances.safetensors")["boxes_xywh_int"].tolist()
    assert [list(box) for box in int_boxes_xywh(instances.boxes_xyxy)] == expected_boxes
    labels = load_file(folder / "labels.safetensors")
    for i, (_, _, w, h) in enumerate(expected_boxes):
        got = label_map(instances.coarse_segm[i], instances.fine_segm[i], h, w)
        assert torch.equal(got.to(torch.uint8), labels[f"labels_{i}"])
    rendered = render_frame(instances)
    assert rendered.dtype == np.uint8
    assert np.array_equal(rendered, np.load(folder / "rendered_bgr.npy")[..., ::-1])


def test_frozen_luts_match_spec_table():
    assert np.array_equal(palette("viridis"), _rgb(SPEC_VIRIDIS))
    expected = _rgb(SPEC_PARULA)
    expected[0] = 0  # CivitAI variant: black background
    assert np.array_equal(palette("parula-black"), expected)
    assert VIRIDIS.shape == PARULA.shape == (256, 3)


def test_frozen_luts_match_opencv():
    cv2 = pytest.importorskip("cv2", reason="OpenCV not installed: the frozen LUT is checked against the spec only")
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    assert np.array_equal(VIRIDIS, cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS)[:, 0, ::-1])
    assert np.array_equal(PARULA, cv2.applyColorMap(ramp, cv2.COLORMAP_PARULA)[:, 0, ::-1])


def _logits_for(labels: np.ndarray, size: int = 112) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant-per-instance logits whose argmax is `labels` everywhere (0 -> coarse background)."""
    coarse = torch.zeros(len(labels), 2, size, size)
    fine = torch.zeros(len(labels), 25, size, size)
    for i, label in enumerate(labels):
        coarse[i, 1 if label else 0] = 5.0
        fine[i, label] = 5.0
    return coarse, fine


def synthetic(boxes, labels, hw=(40, 60)) -> DensePoseInstances:
    coarse, fine = _logits_for(np.array(labels))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return DensePoseInstances(hw, boxes, torch.linspace(0.9, 0.1, len(labels)), coarse, fine)


def test_empty_frame_is_solid_background():
    empty = synthetic([], [])
    assert np.all(render_frame(empty) == [68, 1, 84])
    assert np.all(render_frame(empty, "parula-black") == 0)


def test_later_instance_overwrites_earlier():
    canvas = paint_labels(synthetic([[0, 0, 30, 20], [10, 5, 50, 30]], [3, 17]))
    assert canvas[2, 2] == 3 and canvas[10, 20] == 17 and canvas[25, 45] == 17 and canvas[35, 55] == 0


def test_background_labels_keep_earlier_paint():
    canvas = paint_labels(synthetic([[0, 0, 30, 20], [0, 0, 30, 20]], [5, 0]))
    assert np.all(canvas[:20, :30] == 5)


def test_box_truncation_uses_float_width():
    # x1 = 3.9, x2 = 58.46 -> w = trunc(54.56) = 54 (not trunc(x2) - trunc(x1) = 55); h = trunc(28.96) = 28
    box = [3.9, 1.5, 3.9 + 54.56, 1.5 + 28.96]
    assert int_boxes_xywh(torch.tensor([box])) == [(3, 1, 54, 28)]
    canvas = paint_labels(synthetic([box], [7]))
    rows, cols = np.nonzero(canvas)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (1, 28, 3, 56)


def test_degenerate_box_draws_nothing():
    canvas = paint_labels(synthetic([[10, 10, 10.9, 30], [5, 5, 25, 5.5]], [4, 9]))
    assert not canvas.any()


def test_colour_index_is_truncated():
    labels = np.arange(25, dtype=np.uint8)[None]
    expected = [int(v * 255 / 24) for v in range(25)]
    assert np.array_equal(colorize(labels, "viridis")[0], VIRIDIS[expected])


def test_unknown_colormap():
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        palette("jet")
