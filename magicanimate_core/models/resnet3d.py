"""AnimateDiff-v1 ResNet block: per-frame convolutions, GroupNorm pooled over all frames of the window."""

from __future__ import annotations

import torch
from torch import nn

from .frames import per_frame


class ResnetBlock3D(nn.Module):
    """ResNet block on `(b, c, f, h, w)` videos with the reference's normalisation semantics.

    `norm1`/`norm2` are plain `GroupNorm` applied to the 5-D tensor, so their statistics pool over
    (C/G, F, H, W): every frame of a context window is normalised jointly (per batch row). The 3x3
    convolutions and the shortcut are per frame. Parameter names match the SD1.5 UNet's resnets.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        groups: int,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nonlinearity = nn.SiLU()
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def forward(self, hidden_states: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = per_frame(self.conv1, self.nonlinearity(self.norm1(hidden_states)))
        h = h + self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None, None]
        h = per_frame(self.conv2, self.nonlinearity(self.norm2(h)))
        shortcut = hidden_states if self.conv_shortcut is None else per_frame(self.conv_shortcut, hidden_states)
        return shortcut + h
