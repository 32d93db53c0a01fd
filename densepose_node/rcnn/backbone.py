"""ResNet (bottleneck, FrozenBN, stride in the 1x1 conv) + FPN p2..p6, sized from checkpoint shapes."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvNorm, conv

STAGES = ("res2", "res3", "res4", "res5")
FPN_STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


class Bottleneck(nn.Module):
    """1x1 (carries the stride) -> 3x3 -> 1x1, plus an identity or projection shortcut."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvNorm(shapes[f"{prefix}.conv1.weight"], stride=stride)
        self.conv2 = ConvNorm(shapes[f"{prefix}.conv2.weight"])
        self.conv3 = ConvNorm(shapes[f"{prefix}.conv3.weight"], relu=False)
        shortcut = f"{prefix}.shortcut.weight"
        self.shortcut = ConvNorm(shapes[shortcut], stride=stride, relu=False) if shortcut in shapes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu_(out)


class ResNet(nn.Module):
    """Stem (7x7/2 + max-pool 3x3/2) and stages res2..res5; block counts come from the checkpoint keys."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str) -> None:
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = ConvNorm(shapes[f"{prefix}.stem.conv1.weight"], stride=2)
        for index, stage in enumerate(STAGES):
            count = 0
            while f"{prefix}.{stage}.{count}.conv1.weight" in shapes:
                count += 1
            if count == 0:
                raise ValueError(f"checkpoint has no blocks for {prefix}.{stage}")
            blocks = [
                Bottleneck(shapes, f"{prefix}.{stage}.{i}", stride=2 if i == 0 and index > 0 else 1)
                for i in range(count)
            ]
            self.add_module(stage, nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = F.max_pool2d(self.stem.conv1(x), kernel_size=3, stride=2, padding=1)
        outputs = {}
        for stage in STAGES:
            x = getattr(self, stage)(x)
            outputs[stage] = x
        return outputs


class FPNBackbone(nn.Module):
    """`backbone.*`: ResNet bottom-up, lateral 1x1 + output 3x3 per level, nearest x2 top-down, p6 = p5[::2]."""

    def __init__(self, shapes: Mapping[str, torch.Size], prefix: str = "backbone") -> None:
        super().__init__()
        self.bottom_up = ResNet(shapes, f"{prefix}.bottom_up")
        for level in range(2, 6):
            self.add_module(f"fpn_lateral{level}", conv(shapes[f"{prefix}.fpn_lateral{level}.weight"]))
            self.add_module(f"fpn_output{level}", conv(shapes[f"{prefix}.fpn_output{level}.weight"]))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        bottom_up = self.bottom_up(images)
        prev = self.fpn_lateral5(bottom_up["res5"])
        features = {"p5": self.fpn_output5(prev)}
        for level in (4, 3, 2):
            lateral = getattr(self, f"fpn_lateral{level}")(bottom_up[f"res{level}"])
            prev = lateral + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            features[f"p{level}"] = getattr(self, f"fpn_output{level}")(prev)
        features["p6"] = F.max_pool2d(features["p5"], kernel_size=1, stride=2, padding=0)
        return {name: features[name] for name in FPN_STRIDES}
