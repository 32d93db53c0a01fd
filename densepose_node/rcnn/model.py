"""DensePose R-CNN (R_50_FPN_s1x layout) assembled from a detectron2-named state dict, inference only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..instances import DensePoseInstances
from .backbone import FPN_STRIDES, FPNBackbone
from .box_head import BoxHead, BoxPredictor, detect, multilevel_roi_align
from .boxes import clip_boxes, nonempty
from .densepose_head import ChartPredictor, Decoder, V1ConvXHead
from .ops import roi_align
from .preprocess import network_input
from .rpn import RPN

ROI_LEVELS = ("p2", "p3", "p4", "p5")
# Checkpoint entries this inference-only model does not use: U/V regression (not rendered), and buffers
# some checkpoints carry (anchors, pixel statistics) that are fixed by the architecture here.
IGNORED_KEY_PARTS = ("densepose_predictor.u_lowres.", "densepose_predictor.v_lowres.", "cell_anchors", "pixel_")


class DensePoseRCNN(nn.Module):
    """ResNet-FPN backbone, RPN, Fast R-CNN box head and DensePose chart branch.

    Widths and block counts come from the state-dict shapes, so the same code runs the released
    R_50_FPN_s1x weights and width-reduced copies. Settings are those of `densepose_rcnn_R_50_FPN_s1x`.
    """

    def __init__(self, shapes: Mapping[str, torch.Size]) -> None:
        super().__init__()
        self.backbone = FPNBackbone(shapes)
        self.proposal_generator = RPN(shapes, FPN_STRIDES)
        roi_strides = {level: FPN_STRIDES[level] for level in ROI_LEVELS}
        self.roi_heads = nn.Module()
        self.roi_heads.box_head = BoxHead(shapes)
        self.roi_heads.box_predictor = BoxPredictor(shapes)
        self.roi_heads.decoder = Decoder(shapes, roi_strides)
        self.roi_heads.densepose_head = V1ConvXHead(shapes)
        self.roi_heads.densepose_predictor = ChartPredictor(shapes)
        self.score_threshold = 0.05
        self.box_nms_threshold = 0.5
        self.max_detections = 100
        self.min_size, self.max_size = 800, 1333
        self.box_pooler = (7, 2)  # resolution, sampling ratio
        self.densepose_pooler = (28, 2)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], source: str = "state dict") -> DensePoseRCNN:
        """Build and load strictly (apart from `IGNORED_KEY_PARTS`); errors name `source` and the keys."""
        state = {key: value for key, value in state.items() if not any(part in key for part in IGNORED_KEY_PARTS)}
        try:
            model = cls({key: value.shape for key, value in state.items()})
        except KeyError as error:
            raise ValueError(
                f"{source}: not a DensePose R-CNN R_50_FPN checkpoint, missing tensor {error.args[0]!r}"
            ) from None
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"{source}: checkpoint does not match the DensePose R-CNN layout "
                f"(missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]})"
            )
        return model.eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.backbone.fpn_output2.weight.device

    @torch.inference_mode()
    def forward(
        self,
        frames_bgr: Sequence[np.ndarray],
        score_threshold: float | None = None,
        trace: dict[str, torch.Tensor] | None = None,
    ) -> list[DensePoseInstances]:
        """Detect people in uint8 BGR HxWx3 frames (one batch, any sizes) -> one result per frame, on CPU.

        `trace`, when given, receives the intermediate tensors of the first frame (for parity checks).
        """
        images, sizes = network_input(frames_bgr, self.min_size, self.max_size)
        features = self.backbone(images.to(self.device))
        proposals = self.proposal_generator(features, sizes)
        decoded = self.roi_heads.decoder(features)
        threshold = self.score_threshold if score_threshold is None else score_threshold
        results = []
        for index, (frame, size, (boxes, logits)) in enumerate(zip(frames_bgr, sizes, proposals)):
            record = trace if index == 0 else None
            if record is not None:
                record.update({f"fpn_{k}": v[:1] for k, v in features.items()})
                record.update(rpn_proposal_boxes=boxes, rpn_objectness_logits=logits)
            per_image = {level: features[level][index] for level in ROI_LEVELS}
            boxes, scores = self._detect(per_image, boxes, size, threshold, record)
            coarse, fine = self._densepose(decoded[index], boxes, record)
            results.append(self._to_frame(frame.shape[:2], size, boxes, scores, coarse, fine, record))
        return results

    def _detect(
        self,
        features: Mapping[str, torch.Tensor],
        proposals: torch.Tensor,
        size: tuple[int, int],
        threshold: float,
        trace: dict[str, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        strides = [FPN_STRIDES[level] for level in ROI_LEVELS]
        pooled = multilevel_roi_align(list(features.values()), strides, proposals, *self.box_pooler)
        logits, deltas = self.roi_heads.box_predictor(self.roi_heads.box_head(pooled))
        if trace is not None:
            trace.update(box_head_cls_logits=logits, box_head_box_deltas=deltas)
        return detect(proposals, logits, deltas, size, threshold, self.box_nms_threshold, self.max_detections, trace)

    def _densepose(
        self, decoded: torch.Tensor, boxes: torch.Tensor, trace: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        resolution, sampling = self.densepose_pooler
        pooled = roi_align(decoded, boxes, resolution, 1.0 / FPN_STRIDES[ROI_LEVELS[0]], sampling)
        head_out = self.roi_heads.densepose_head(pooled)
        if trace is not None:
            trace.update(densepose_pooled=pooled, densepose_head_out=head_out, pred_boxes_net=boxes)
        return self.roi_heads.densepose_predictor(head_out)

    @staticmethod
    def _to_frame(
        frame_hw: tuple[int, int],
        net_hw: tuple[int, int],
        boxes: torch.Tensor,
        scores: torch.Tensor,
        coarse: torch.Tensor,
        fine: torch.Tensor,
        trace: dict[str, torch.Tensor] | None,
    ) -> DensePoseInstances:
        """Boxes from network-input to frame pixels (float32 factors), clipped; empty boxes dropped."""
        height, width = frame_hw
        boxes = boxes.clone()
        boxes[:, 0::2] *= width / net_hw[1]
        boxes[:, 1::2] *= height / net_hw[0]
        boxes = clip_boxes(boxes, height, width)
        keep = nonempty(boxes)
        if trace is not None:
            trace.update(coarse_segm=coarse, fine_segm=fine)
        return DensePoseInstances(
            (int(height), int(width)), boxes[keep].cpu(), scores[keep].cpu(), coarse[keep].cpu(), fine[keep].cpu()
        )
