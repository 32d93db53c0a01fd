"""Convolution building blocks named like detectron2's checkpoint keys (`conv.weight`, `conv.norm.*`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters (eps 1e-5), as `F.batch_norm` in eval mode."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )


class ConvNorm(nn.Conv2d):
    """Bias-free convolution followed by FrozenBN (optionally ReLU)."""

    def __init__(self, weight_shape: torch.Size, stride: int = 1, relu: bool = True) -> None:
        out_channels, in_channels, kernel, _ = weight_shape
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = FrozenBatchNorm2d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(super().forward(x))
        return F.relu_(x) if self.relu else x


class ConvReLU(nn.Conv2d):
    """Convolution with bias and 'same' padding, followed by ReLU."""

    def __init__(self, weight_shape: torch.Size) -> None:
        out_channels, in_channels, kernel, _ = weight_shape
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(super().forward(x))


def conv(weight_shape: torch.Size) -> nn.Conv2d:
    """Convolution with bias and 'same' padding, no activation."""
    out_channels, in_channels, kernel, _ = weight_shape
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
