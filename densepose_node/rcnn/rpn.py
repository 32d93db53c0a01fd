"""Region proposal network: shared head over p2..p6, anchors, top-k, per-level NMS (test-time settings)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .boxes import clip_boxes, decode_deltas, nonempty
from .layers import ConvReLU, conv
from .ops import batched_nms

LEVELS = ("p2", "p3", "p4", "p5", "p6")
ANCHOR_SIZES = {"p2": 32, "p3": 64, "p4": 128, "p5": 256, "p6": 512}
ASPECT_RATIOS = (0.5, 1.0, 2.0)  # height / width


def cell_anchors(size: int) -> torch.Tensor:
    """The A anchors centred on (0, 0) for one level: XYXY [A, 4], ratios in `ASPECT_RATIOS` order."""
    anchors = []
    for ratio in ASPECT_RATIOS:
        w = math.sqrt(size**2.0 / ratio)
        h = ratio * w
        anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors)


def grid_anchors(size: int, stride: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Anchors of a level over an HxW grid, flattened (y, x, a) row-major -> [H*W*A, 4]."""
    shifts_x = torch.arange(0, width * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0, height * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    return (shifts.view(-1, 1, 4) + cell_anchors(size).to(device).view(1, -1, 4)).reshape(-1, 4)


class RPN(nn.Module):
    """`proposal_generator.*`: 3x3 conv + ReLU, then objectness (A) and anchor deltas (4A) 1x1 convs."""

    def __init__(
        self,
        shapes: Mapping[str, torch.Size],
        strides: Mapping[str, int],
        pre_nms_topk: int = 1000,
        post_nms_topk: int = 1000,
        nms_threshold: float = 0.7,
    ) -> None:
        super().__init__()
        prefix = "proposal_generator.rpn_head"
        self.rpn_head = nn.Module()
        self.rpn_head.conv = ConvReLU(shapes[f"{prefix}.conv.weight"])
        self.rpn_head.objectness_logits = conv(shapes[f"{prefix}.objectness_logits.weight"])
        self.rpn_head.anchor_deltas = conv(shapes[f"{prefix}.anchor_deltas.weight"])
        self.strides = dict(strides)
        self.pre_nms_topk, self.post_nms_topk, self.nms_threshold = pre_nms_topk, post_nms_topk, nms_threshold

    def forward(
        self, features: Mapping[str, torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image: (proposal boxes XYXY [P, 4] in input pixels, objectness logits [P]), by descending logit."""
        level_boxes, level_logits, level_ids = [], [], []
        for level_id, level in enumerate(LEVELS):
            x = self.rpn_head.conv(features[level])
            logits = self.rpn_head.objectness_logits(x)
            deltas = self.rpn_head.anchor_deltas(x)
            n, a, h, w = logits.shape
            logits = logits.permute(0, 2, 3, 1).flatten(1)
            deltas = deltas.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
            anchors = grid_anchors(ANCHOR_SIZES[level], self.strides[level], h, w, logits.device)
            top_logits, top_index = logits.topk(min(self.pre_nms_topk, logits.shape[1]), dim=1)
            top_boxes = torch.stack(
                [decode_deltas(deltas[i, top_index[i]], anchors[top_index[i]], (1.0, 1.0, 1.0, 1.0)) for i in range(n)]
            )
            level_boxes.append(top_boxes)
            level_logits.append(top_logits)
            level_ids.append(torch.full((top_index.shape[1],), level_id, dtype=torch.int64, device=logits.device))
        boxes, logits, ids = torch.cat(level_boxes, dim=1), torch.cat(level_logits, dim=1), torch.cat(level_ids)
        return [self._select(boxes[i], logits[i], ids, size) for i, size in enumerate(image_sizes)]

    def _select(
        self, boxes: torch.Tensor, logits: torch.Tensor, level_ids: torch.Tensor, image_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        finite = torch.isfinite(boxes).all(dim=1) & torch.isfinite(logits)
        boxes, logits, level_ids = boxes[finite], logits[finite], level_ids[finite]
        boxes = clip_boxes(boxes, *image_size)
        keep = nonempty(boxes)
        boxes, logits, level_ids = boxes[keep], logits[keep], level_ids[keep]
        keep = batched_nms(boxes, logits, level_ids, self.nms_threshold)[: self.post_nms_topk]
        return boxes[keep], logits[keep]
