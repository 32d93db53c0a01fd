"""NMS and ROIAlign with torchvision's CPU-kernel semantics, in plain PyTorch.

torchvision's compiled ops are used when `import torchvision` works *and* its ops run (a CPU-only torch
next to PyPI's CUDA torchvision imports fine but has no kernels); otherwise the pure-torch versions below,
which reproduce the C++ kernels operation by operation (float32 order of operations included).
"""

from __future__ import annotations

import functools
from types import ModuleType

import numpy as np
import torch

# torchvision's batched_nms switches from the coordinate-offset trick to a per-class loop above this many
# box coordinates on CPU; the two are not bit-identical near an IoU tie, so the switch point matters.
_VANILLA_BATCHED_NMS_MIN_COORDS = 4000
# Elements gathered per corner in one ROIAlign chunk (bounds each temporary to ~32 MB).
_ROI_ALIGN_CHUNK_ELEMENTS = 1 << 23


@functools.cache
def torchvision_ops() -> ModuleType | None:
    """`torchvision.ops` when its compiled nms and roi_align run, else None."""
    try:
        import torchvision
        from torchvision import ops

        if not torchvision.extension._has_ops():
            return None
        boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.5, 0.5, 2.0, 2.0]])
        ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
        ops.roi_align(torch.zeros(1, 1, 4, 4), torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]]), (2, 2), 1.0, 2, False)
    except Exception:  # any failure (missing package, missing kernels, ABI mismatch) means: do not use it
        return None
    return ops


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, by descending score (stable for ties).

    A box is suppressed by an earlier kept one when IoU > `iou_threshold` (strict, compared in double
    precision as the C++ kernel does). Areas have no +1.
    """
    tv = torchvision_ops()
    if tv is not None:
        return tv.nms(boxes, scores, iou_threshold)
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.sort(scores, descending=True, stable=True).indices
    x1, y1, x2, y2, areas = x1[order], y1[order], x2[order], y2[order], areas[order]
    width = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :])).clamp(min=0)
    height = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :])).clamp(min=0)
    inter = width * height
    iou = inter / (areas[:, None] + areas[None, :] - inter)
    overlaps = (iou.double() > iou_threshold).cpu().numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group id; kept indices by descending score, as torchvision's `batched_nms` on CPU."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if boxes.numel() > _VANILLA_BATCHED_NMS_MIN_COORDS:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for group in torch.unique(groups):
            members = torch.where(groups == group)[0]
            keep_mask[members[nms(boxes[members], scores[members], iou_threshold)]] = True
        kept = torch.where(keep_mask)[0]
        return kept[scores[kept].sort(descending=True)[1]]
    offsets = groups.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _axis_samples(start: torch.Tensor, length: torch.Tensor, bins: int, grid: int, size: int):
    """Per-axis bilinear taps of ROIAlign's sample points: (valid, low, high, low weight, high weight).

    Shapes [R, bins * grid]; the float32 expression order follows torchvision's `pre_calc_for_bilinear`.
    """
    bin_size = length / bins
    bin_index = torch.arange(bins, dtype=start.dtype, device=start.device)
    sub = torch.arange(grid, dtype=start.dtype, device=start.device) + 0.5
    coord = (start[:, None] + bin_index[None, :] * bin_size[:, None])[:, :, None] + (
        sub[None, None, :] * bin_size[:, None, None]
    ) / grid
    coord = coord.reshape(len(start), bins * grid)
    valid = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.to(torch.int64)
    at_edge = low >= size - 1
    low = torch.where(at_edge, size - 1, low)
    high = torch.where(at_edge, size - 1, low + 1)
    coord = torch.where(at_edge, low.to(coord.dtype), coord)
    frac = coord - low.to(coord.dtype)
    return valid, low, high, 1.0 - frac, frac


def roi_align(
    features: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
) -> torch.Tensor:
    """ROIAlign of one image's features [C, H, W] over XYXY boxes [R, 4] -> [R, C, P, P].

    Only `sampling_ratio > 0` is implemented (the model uses 2).
    """
    if sampling_ratio <= 0:
        raise ValueError(f"roi_align: sampling_ratio must be > 0, got {sampling_ratio}")
    tv = torchvision_ops()
    if tv is not None:
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
        return tv.roi_align(features[None], rois, (output_size, output_size), spatial_scale, sampling_ratio, aligned)
    channels, height, width = features.shape
    out = features.new_zeros(len(boxes), channels, output_size, output_size)
    if len(boxes) == 0:
        return out
    offset = 0.5 if aligned else 0.0
    scaled = (boxes.double() * spatial_scale - offset).to(features.dtype)
    x_start, y_start, x_end, y_end = scaled.unbind(1)
    roi_w, roi_h = x_end - x_start, y_end - y_start
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    grid, taps = sampling_ratio, output_size * sampling_ratio
    y_valid, y_low, y_high, y_hw, y_lw = _axis_samples(y_start, roi_h, output_size, grid, height)
    x_valid, x_low, x_high, x_hw, x_lw = _axis_samples(x_start, roi_w, output_size, grid, width)
    valid = (y_valid[:, :, None] & x_valid[:, None, :]).reshape(len(boxes), -1)
    rows_last = features.reshape(channels, height * width).t().contiguous()  # [H*W, C]: gathers copy rows
    chunk = max(1, _ROI_ALIGN_CHUNK_ELEMENTS // (channels * taps * taps))
    for begin in range(0, len(boxes), chunk):
        rois = slice(begin, begin + chunk)
        value = None
        for y_index, y_weight in ((y_low, y_hw), (y_high, y_lw)):
            for x_index, x_weight in ((x_low, x_hw), (x_high, x_lw)):
                weight = (y_weight[rois, :, None] * x_weight[rois, None, :]).reshape(-1, taps * taps)
                weight = torch.where(valid[rois], weight, 0.0).reshape(-1, 1)
                position = (y_index[rois, :, None] * width + x_index[rois, None, :]).reshape(-1)
                term = rows_last.index_select(0, position).mul_(weight)
                value = term if value is None else value.add_(term)
        # value: [r * (P*g) * (P*g), C] -> [r, P, g, P, g, C]; accumulate samples iy-major, then ix, from 0.
        samples = value.view(-1, output_size, grid, output_size, grid, channels)
        total = torch.zeros_like(samples[:, :, 0, :, 0])
        for iy in range(grid):
            for ix in range(grid):
                total += samples[:, :, iy, :, ix]
        out[rois] = (total / float(grid * grid)).permute(0, 3, 1, 2)
    return out
