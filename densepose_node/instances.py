"""The interface between estimation and rendering: one frame's detected people."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DensePoseInstances:
    """People found in one frame, in model output order (descending score).

    `boxes_xyxy` are float32 frame pixels (rescaled from the network input and clipped, as detectron2's
    `pred_boxes`); `coarse_segm` [N, 2, S, S] and `fine_segm` [N, 25, S, S] are the box-relative segmentation
    logits (S = 112 for R_50_FPN_s1x). All tensors live on the CPU.
    """

    image_hw: tuple[int, int]
    boxes_xyxy: torch.Tensor
    scores: torch.Tensor
    coarse_segm: torch.Tensor
    fine_segm: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: torch.Tensor | slice) -> DensePoseInstances:
        """The instances picked by a mask, index tensor or slice, order preserved."""
        return DensePoseInstances(
            self.image_hw, self.boxes_xyxy[keep], self.scores[keep], self.coarse_segm[keep], self.fine_segm[keep]
        )

    def filter(self, score_threshold: float = 0.0, max_people: int | None = None) -> DensePoseInstances:
        """Keep scores > `score_threshold`, then the `max_people` most confident (None or 0 = all)."""
        kept = self.select(self.scores > score_threshold) if score_threshold > 0 else self
        return kept.select(slice(0, max_people)) if max_people else kept
