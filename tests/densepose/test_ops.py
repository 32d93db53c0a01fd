"""Pure-torch NMS / ROIAlign against scalar float32 transcriptions of torchvision's CPU kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose_node.rcnn import ops
from densepose_node.rcnn.ops import batched_nms, nms, roi_align

f32 = np.float32


@pytest.fixture(autouse=True)
def pure_torch(monkeypatch):
    """Always test the pure-torch paths, even where a working torchvision is installed."""
    monkeypatch.setattr(ops, "torchvision_ops", lambda: None)


def scalar_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    areas = [f32(b[2] - b[0]) * f32(b[3] - b[1]) for b in boxes]
    suppressed, keep = set(), []
    for pos, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[pos + 1 :]:
            w = max(f32(0), min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0]))
            h = max(f32(0), min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1]))
            inter = f32(w * h)
            if float(inter / f32(f32(areas[i] + areas[j]) - inter)) > threshold:
                suppressed.add(j)
    return keep


def scalar_roi_align(feat: np.ndarray, box: np.ndarray, size: int, scale: float, grid: int) -> np.ndarray:
    channels, height, width = feat.shape
    x0, y0, x1, y1 = (f32(float(v) * scale) for v in box)
    roi_w, roi_h = max(f32(x1 - x0), f32(1)), max(f32(y1 - y0), f32(1))
    bin_w, bin_h = f32(roi_w / f32(size)), f32(roi_h / f32(size))
    out = np.zeros((channels, size, size), np.float32)
    for ph in range(size):
        for pw in range(size):
            acc = np.zeros(channels, np.float32)
            for iy in range(grid):
                y = f32(f32(y0 + f32(f32(ph) * bin_h)) + f32(f32(f32(iy + 0.5) * bin_h) / f32(grid)))
                for ix in range(grid):
                    x = f32(f32(x0 + f32(f32(pw) * bin_w)) + f32(f32(f32(ix + 0.5) * bin_w) / f32(grid)))
                    if y < -1.0 or y > height or x < -1.0 or x > width:
                        continue
                    yy, xx = max(y, f32(0)), max(x, f32(0))
                    yl, xl = int(yy), int(xx)
                    if yl >= height - 1:
                        yl = yh = height - 1
                        yy = f32(yl)
                    else:
                        yh = yl + 1
                    if xl >= width - 1:
                        xl = xh = width - 1
                        xx = f32(xl)
                    else:
                        xh = xl + 1
                    ly, lx = f32(yy - f32(yl)), f32(xx - f32(xl))
                    hy, hx = f32(1 - ly), f32(1 - lx)
                    v = (
                        f32(hy * hx) * feat[:, yl, xl]
                        + f32(hy * lx) * feat[:, yl, xh]
                        + f32(ly * hx) * feat[:, yh, xl]
                        + f32(ly * lx) * feat[:, yh, xh]
                    )
                    acc = acc + v
            out[:, ph, pw] = acc / f32(grid * grid)
    return out


def random_boxes(generator: torch.Generator, count: int, extent: float = 60.0) -> torch.Tensor:
    xy = torch.rand(count, 2, generator=generator) * extent
    wh = torch.rand(count, 2, generator=generator) * extent / 2
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_scalar_kernel(seed):
    generator = torch.Generator().manual_seed(seed)
    boxes, scores = random_boxes(generator, 60), torch.rand(60, generator=generator)
    scores[5] = scores[6]  # a tie: stable order keeps the lower index first
    expected = scalar_nms(boxes.numpy(), scores.numpy(), 0.5)
    assert nms(boxes, scores, 0.5).tolist() == expected


def test_batched_nms_groups_and_switch():
    generator = torch.Generator().manual_seed(7)
    for count in (200, 1200):  # <= 1000 boxes: coordinate trick; more: per-group loop (torchvision's switch)
        boxes, scores = random_boxes(generator, count), torch.rand(count, generator=generator)
        groups = torch.randint(0, 3, (count,), generator=generator)
        keep = batched_nms(boxes, scores, groups, 0.6)
        assert torch.all(scores[keep][:-1] >= scores[keep][1:])
        for group in range(3):
            members = torch.where(groups == group)[0]
            expected = members[nms(boxes[members], scores[members], 0.6)]
            assert sorted(keep[groups[keep] == group].tolist()) == sorted(expected.tolist())
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).numel() == 0


def test_roi_align_matches_scalar_kernel():
    generator = torch.Generator().manual_seed(3)
    feat = torch.randn(3, 13, 17, generator=generator)
    boxes = torch.tensor(
        [
            [4.3, 2.2, 40.7, 30.1],  # ordinary
            [-10.0, -6.0, 20.0, 9.0],  # partly outside the map
            [60.0, 45.0, 90.0, 70.0],  # mostly outside
            [12.0, 12.0, 12.2, 12.1],  # degenerate: roi size clamped to 1
            [0.0, 0.0, 68.0, 52.0],  # exactly the map
        ]
    )
    got = roi_align(feat, boxes, 7, 0.25, 2)
    for i, box in enumerate(boxes.numpy()):
        expected = scalar_roi_align(feat.numpy(), box, 7, 0.25, 2)
        assert np.array_equal(got[i].numpy(), expected), i


def test_roi_align_rejects_adaptive_sampling():
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(torch.zeros(1, 4, 4), torch.zeros(1, 4), 2, 1.0, 0)
