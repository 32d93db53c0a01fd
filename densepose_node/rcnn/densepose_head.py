"""DensePose branch: FPN decoder (p2..p5 -> stride 4), V1ConvX head, chart predictor (segmentation only)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvReLU, conv

DECODER_STRIDE = 4


class Upsample2x(nn.Module):
    """Bilinear x2 (align_corners=False); parameter-free, it only occupies an index in the decoder heads."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    """`roi_heads.decoder`: per level, max(1, log2(stride / 4)) conv+ReLU (each followed by x2 upsampling
    above stride 4), summed, then a 1x1 `predictor` conv."""

    def __init__(
        self, shapes: Mapping[str, torch.Size], strides: Mapping[str, int], prefix: str = "roi_heads.decoder"
    ) -> None:
        super().__init__()
        self.levels = list(strides)
        for level, stride in strides.items():
            ops: list[nn.Module] = []
            for _ in range(max(1, int(math.log2(stride) - math.log2(DECODER_STRIDE)))):
                ops.append(ConvReLU(shapes[f"{prefix}.{level}.{len(ops)}.weight"]))
                if stride != DECODER_STRIDE:
                    ops.append(Upsample2x())
            self.add_module(level, nn.Sequential(*ops))
        self.predictor = conv(shapes[f"{prefix}.predictor.weight"])

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        x = None
        for level in self.levels:
            y = getattr(self, level)(features[level])
            x = y if x is None else x + y
        return self.predictor(x)


class V1ConvXHead(nn.Module):
    """`roi_heads.densepose_head`: stacked 3x3 conv + ReLU (`body_conv_fcn1..n`, n from the checkpoint)."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str = "roi_heads.densepose_head") -> None:
        super().__init__()
        self.num_convs = 0
        while f"{prefix}.body_conv_fcn{self.num_convs + 1}.weight" in shapes:
            self.num_convs += 1
            name = f"body_conv_fcn{self.num_convs}"
            self.add_module(name, ConvReLU(shapes[f"{prefix}.{name}.weight"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.num_convs + 1):
            x = getattr(self, f"body_conv_fcn{i}")(x)
        return x


class ChartPredictor(nn.Module):
    """`roi_heads.densepose_predictor`, segmentation part: ConvTranspose2d (k4 s2 p1) then bilinear x`up_scale`.

    Only coarse (`ann_index_lowres`) and fine (`index_uv_lowres`) segmentation are computed; U/V do not
    influence the rendered part-index image, so their weights are not loaded.
    """

    def __init__(
        self, shapes: Mapping[str, torch.Size], prefix: str = "roi_heads.densepose_predictor", up_scale: int = 2
    ) -> None:
        super().__init__()
        for name in ("ann_index_lowres", "index_uv_lowres"):
            in_channels, out_channels, kernel, _ = shapes[f"{prefix}.{name}.weight"]
            self.add_module(
                name, nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=2, padding=kernel // 2 - 1)
            )
        self.up_scale = up_scale

    def forward(self, head_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse [R, 2, S, S] and fine [R, 25, S, S] segmentation logits (S = 112 for 28x28 inputs)."""
        coarse, fine = (
            F.interpolate(layer(head_out), scale_factor=self.up_scale, mode="bilinear", align_corners=False)
            for layer in (self.ann_index_lowres, self.index_uv_lowres)
        )
        return coarse, fine
