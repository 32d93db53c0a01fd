"""AnimateDiff-v1 ResNet block: per-frame convolutions, GroupNorm pooled over all frames of the window."""

from __future__ import annotations

import torch
from torch import nn

from .frames import batch_to_frames, frames_to_batch, group_norm_silu_over_frames


class ResnetBlock3D(nn.Module):
    """ResNet block with the reference's normalisation semantics.

    `norm1`/`norm2` normalise every frame of a context window jointly (statistics over (C/G, F, H, W) per
    video), as the original's `GroupNorm` on the 5-D tensor. The 3x3 convolutions and the shortcut are
    per frame. Parameter names match the SD1.5 UNet's resnets.
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

    def forward(self, video: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """`(b, c, f, h, w)` video, `(b, temb_channels)` embedding -> `(b, out_channels, f, h, w)`."""
        num_frames = video.shape[2]
        return batch_to_frames(self.forward_frames(frames_to_batch(video), temb, num_frames), num_frames)

    def forward_frames(self, frames: torch.Tensor, temb: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The same on `((b f), c, h, w)` frames (the UNet's internal layout)."""
        h = self.conv1(group_norm_silu_over_frames(frames, num_frames, self.norm1))
        h += self.time_emb_proj(self.nonlinearity(temb)).repeat_interleave(num_frames, dim=0)[:, :, None, None]
        h = self.conv2(group_norm_silu_over_frames(h, num_frames, self.norm2))
        h += frames if self.conv_shortcut is None else self.conv_shortcut(frames)
        return h
