"""Fast R-CNN box head: multi-level ROIAlign 7x7, two FC layers, class scores and box deltas, inference."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .boxes import clip_boxes, decode_deltas
from .ops import batched_nms, roi_align

BOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
CANONICAL_BOX_SIZE, CANONICAL_LEVEL = 224, 4


def assign_levels(boxes: torch.Tensor, min_level: int, max_level: int) -> torch.Tensor:
    """FPN level (min_level..max_level) of each box: floor(4 + log2(sqrt(area) / 224 + eps)), clamped."""
    sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    levels = torch.floor(CANONICAL_LEVEL + torch.log2(sizes / CANONICAL_BOX_SIZE + sys.float_info.epsilon))
    return torch.clamp(levels, min=min_level, max=max_level).to(torch.int64)


def multilevel_roi_align(
    features: Sequence[torch.Tensor], strides: Sequence[int], boxes: torch.Tensor, output_size: int, sampling: int
) -> torch.Tensor:
    """ROIAlign (aligned=False) of one image's boxes, each from its assigned level -> [R, C, P, P]."""
    levels = [stride.bit_length() - 1 for stride in strides]
    assigned = assign_levels(boxes, levels[0], levels[-1])
    out = features[0].new_zeros(len(boxes), features[0].shape[0], output_size, output_size)
    for feature, stride, level in zip(features, strides, levels):
        index = torch.nonzero(assigned == level).squeeze(1)
        if len(index):
            out[index] = roi_align(feature, boxes[index], output_size, 1.0 / stride, sampling)
    return out


class BoxHead(nn.Module):
    """`roi_heads.box_head`: flatten, fc1 + ReLU, fc2 + ReLU."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str = "roi_heads.box_head") -> None:
        super().__init__()
        self.fc1 = linear(shapes[f"{prefix}.fc1.weight"])
        self.fc2 = linear(shapes[f"{prefix}.fc2.weight"])

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(F.relu(self.fc1(torch.flatten(pooled, start_dim=1)))))


class BoxPredictor(nn.Module):
    """`roi_heads.box_predictor`: class logits [P, 2] (person, background) and box deltas [P, 4]."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str = "roi_heads.box_predictor") -> None:
        super().__init__()
        self.cls_score = linear(shapes[f"{prefix}.cls_score.weight"])
        self.bbox_pred = linear(shapes[f"{prefix}.bbox_pred.weight"])
        if self.cls_score.out_features != 2 or self.bbox_pred.out_features != 4:
            raise ValueError("expected a single-class (person) box predictor: cls_score 2 outputs, bbox_pred 4")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


def linear(weight_shape: torch.Size) -> nn.Linear:
    """A Linear layer sized from its checkpoint weight [out, in]."""
    out_features, in_features = weight_shape
    return nn.Linear(in_features, out_features)


def detect(
    proposals: torch.Tensor,
    logits: torch.Tensor,
    deltas: torch.Tensor,
    image_size: tuple[int, int],
    score_threshold: float,
    nms_threshold: float = 0.5,
    max_detections: int = 100,
    trace: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast R-CNN inference for one image: person boxes [N, 4] (input pixels, clipped) and scores [N].

    softmax, decode with weights (10, 10, 5, 5), drop non-finite rows, clip, keep score > threshold,
    NMS, keep the first `max_detections`; sorted by descending score.
    """
    boxes = decode_deltas(deltas, proposals, BOX_REG_WEIGHTS)
    scores = F.softmax(logits, dim=-1)
    if trace is not None:
        trace.update(box_head_scores=scores, box_head_boxes_decoded=boxes)
    finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    boxes, scores = clip_boxes(boxes[finite], *image_size), scores[finite, 0]
    passing = scores > score_threshold
    boxes, scores = boxes[passing], scores[passing]
    keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.int64), nms_threshold)[:max_detections]
    return boxes[keep], scores[keep]
