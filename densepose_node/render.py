"""Predictor outputs -> part-label canvas -> RGB frame, exactly as vid2densepose draws them.

vid2densepose starts from `applyColorMap(zeros, VIRIDIS)` and runs DensePose's fine-segmentation visualizer
with alpha 1: for each instance in model order, the pixels of its truncated box whose label is > 0 take
viridis(trunc(label * 255 / 24)). Painting labels first and colouring afterwards gives the same bytes and
lets callers resize or smooth the label canvas before colouring.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .colormaps import PARULA, VIRIDIS
from .instances import DensePoseInstances

NUM_PART_LABELS = 24
COLORMAPS = ("viridis", "parula-black")
_LUTS = {"viridis": VIRIDIS, "parula-black": PARULA}


def int_boxes_xywh(boxes_xyxy: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """XYXY float32 boxes -> (x, y, w, h), each truncated toward zero; w = trunc(x2 - x1) in float32."""
    boxes = boxes_xyxy.to(torch.float32)
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).long()
    return [tuple(row) for row in xywh.tolist()]


def label_map(coarse_segm: torch.Tensor, fine_segm: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Part labels 0..24 over a box, int64 [max(h, 1), max(w, 1)].

    Logits are resized bilinearly (half-pixel centres, no antialias) before the argmax; the label is the fine
    argmax where the coarse argmax is body, else 0.
    """
    size = (max(height, 1), max(width, 1))
    coarse = F.interpolate(coarse_segm[None], size, mode="bilinear", align_corners=False)
    fine = F.interpolate(fine_segm[None], size, mode="bilinear", align_corners=False)
    return (fine.argmax(dim=1) * (coarse.argmax(dim=1) > 0).long())[0]


def paint_labels(instances: DensePoseInstances) -> np.ndarray:
    """uint8 [H, W] canvas of part labels (0 = background); later instances overwrite earlier ones."""
    canvas = np.zeros(instances.image_hw, dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(int_boxes_xywh(instances.boxes_xyxy)):
        if w <= 0 or h <= 0:
            continue
        labels = label_map(instances.coarse_segm[i], instances.fine_segm[i], h, w).numpy().astype(np.uint8)
        region = canvas[y : y + h, x : x + w]
        labels = labels[: region.shape[0], : region.shape[1]]
        np.copyto(region, labels, where=labels > 0)
    return canvas


def palette(colormap: str = "viridis") -> np.ndarray:
    """RGB colour of each label 0..24, [25, 3] uint8.

    `viridis`: viridis(trunc(label * 255/24)), background viridis(0) (vid2densepose, MagicAnimate).
    `parula-black`: parula likewise, background black (comfyui_controlnet_aux's "Parula (CivitAI)").
    """
    if colormap not in _LUTS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    values = np.arange(NUM_PART_LABELS + 1, dtype=np.float32) * np.float32(255.0 / NUM_PART_LABELS)
    colours = _LUTS[colormap][values.clip(0, 255).astype(np.uint8)].copy()
    if colormap == "parula-black":
        colours[0] = 0
    return colours


def colorize(labels: np.ndarray, colormap: str = "viridis") -> np.ndarray:
    """Label canvas [H, W] -> RGB uint8 [H, W, 3]."""
    return palette(colormap)[labels]


def render_frame(instances: DensePoseInstances, colormap: str = "viridis") -> np.ndarray:
    """The vid2densepose frame for one set of instances, RGB uint8 [H, W, 3] (vid2densepose writes BGR)."""
    return colorize(paint_labels(instances), colormap)
