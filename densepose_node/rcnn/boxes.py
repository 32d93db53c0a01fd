"""Box arithmetic of detectron2's R-CNN: delta decoding, clipping, emptiness."""

from __future__ import annotations

import math

import torch

# Largest log-scale a delta may apply (detectron2's `_DEFAULT_SCALE_CLAMP`).
SCALE_CLAMP = math.log(1000.0 / 16)


def decode_deltas(
    deltas: torch.Tensor, boxes: torch.Tensor, weights: tuple[float, float, float, float]
) -> torch.Tensor:
    """Apply (dx, dy, dw, dh) deltas [N, 4] to XYXY boxes [N, 4] (`Box2BoxTransform.apply_deltas`)."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0] / wx
    dy = deltas[:, 1] / wy
    dw = torch.clamp(deltas[:, 2] / ww, max=SCALE_CLAMP)
    dh = torch.clamp(deltas[:, 3] / wh, max=SCALE_CLAMP)
    pred_ctr_x = dx * widths + ctr_x
    pred_ctr_y = dy * heights + ctr_y
    pred_w = torch.exp(dw) * widths
    pred_h = torch.exp(dh) * heights
    return torch.stack(
        (pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h, pred_ctr_x + 0.5 * pred_w, pred_ctr_y + 0.5 * pred_h),
        dim=-1,
    )


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Clamp XYXY boxes to [0, width] x [0, height]."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(
        (
            x1.clamp(min=0, max=width),
            y1.clamp(min=0, max=height),
            x2.clamp(min=0, max=width),
            y2.clamp(min=0, max=height),
        ),
        dim=-1,
    )


def nonempty(boxes: torch.Tensor) -> torch.Tensor:
    """Mask of boxes with positive width and height."""
    return ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
