"""Down, mid and up blocks of the 3D UNet: SD1.5 blocks applied per frame, plus motion modules.

Every block works on `((b f), c, h, w)` frames (see `frames.py`) and is told the window length.
"""

from __future__ import annotations

import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from torch import nn

from .motion_module import MotionModule
from .resnet3d import ResnetBlock3D


class Downsampler(nn.Module):
    """Stride-2 3x3 convolution (SD1.5's `downsamplers.0.conv`), per frame."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


class SpatialTransformer(Transformer2DModel):
    """SD1.5's Transformer2D (continuous input, 1x1-conv projections) on every frame.

    Written out so that the tokens are a view of channels-last frames (no layout copy in or out) and
    the text embedding arrives already repeated per frame, once per UNet call.
    """

    def forward(self, frames: torch.Tensor, text_rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rows, _, height, width = frames.shape
        memory_format = (
            torch.channels_last
            if not frames.is_contiguous() and frames.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        hidden = self.proj_in(self.norm(frames))
        inner = hidden.shape[1]
        tokens = hidden.permute(0, 2, 3, 1).reshape(rows, height * width, inner)
        for block in self.transformer_blocks:
            tokens = block(tokens, encoder_hidden_states=text_rows)
        hidden = tokens.reshape(rows, height, width, inner).permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
        out = self.proj_out(hidden)
        out += frames
        return out


def spatial_transformer(channels: int, heads: int, groups: int, text_dim: int) -> SpatialTransformer:
    return SpatialTransformer(
        num_attention_heads=heads,
        attention_head_dim=channels // heads,
        in_channels=channels,
        norm_num_groups=groups,
        cross_attention_dim=text_dim,
    )


class DownBlock3D(nn.Module):
    """`layers` x (resnet [-> spatial transformer] -> motion module), then an optional downsampler."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        *,
        layers: int,
        groups: int,
        eps: float,
        heads: int,
        text_dim: int | None,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, temb_channels, groups, eps)
            for i in range(layers)
        )
        if text_dim is not None:
            self.attentions = nn.ModuleList(
                spatial_transformer(out_channels, heads, groups, text_dim) for _ in range(layers)
            )
        self.motion_modules = nn.ModuleList(MotionModule(out_channels) for _ in range(layers))
        if downsample:
            self.downsamplers = nn.ModuleList([Downsampler(out_channels)])

    def forward(
        self, hidden: torch.Tensor, temb: torch.Tensor, text_rows: torch.Tensor, num_frames: int
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        attentions = getattr(self, "attentions", [None] * len(self.resnets))
        for resnet, attention, motion in zip(self.resnets, attentions, self.motion_modules):
            hidden = resnet.forward_frames(hidden, temb, num_frames)
            if attention is not None:
                hidden = attention(hidden, text_rows)
            hidden = motion.forward_frames(hidden, num_frames)
            skips.append(hidden)
        if hasattr(self, "downsamplers"):
            hidden = self.downsamplers[0](hidden)
            skips.append(hidden)
        return hidden, skips


class MidBlock3D(nn.Module):
    """resnet -> spatial transformer -> resnet (no motion module in the mid block)."""

    def __init__(self, channels: int, temb_channels: int, *, groups: int, eps: float, heads: int, text_dim: int):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock3D(channels, channels, temb_channels, groups, eps) for _ in range(2))
        self.attentions = nn.ModuleList([spatial_transformer(channels, heads, groups, text_dim)])

    def enter(self, hidden: torch.Tensor, temb: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The first resnet: the last computation that the two guidance halves share."""
        return self.resnets[0].forward_frames(hidden, temb, num_frames)

    def finish(
        self, hidden: torch.Tensor, temb: torch.Tensor, text_rows: torch.Tensor, num_frames: int
    ) -> torch.Tensor:
        """Spatial transformer (the first reference-attention block) and the second resnet."""
        return self.resnets[1].forward_frames(self.attentions[0](hidden, text_rows), temb, num_frames)


class UpBlock3D(nn.Module):
    """`layers` x (concat skip -> resnet [-> spatial transformer] -> motion module), then an optional upsampler."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        prev_channels: int,
        temb_channels: int,
        *,
        layers: int,
        groups: int,
        eps: float,
        heads: int,
        text_dim: int | None,
        upsample: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList()
        for i in range(layers):
            skip_channels = in_channels if i == layers - 1 else out_channels
            resnet_in = prev_channels if i == 0 else out_channels
            self.resnets.append(ResnetBlock3D(resnet_in + skip_channels, out_channels, temb_channels, groups, eps))
        if text_dim is not None:
            self.attentions = nn.ModuleList(
                spatial_transformer(out_channels, heads, groups, text_dim) for _ in range(layers)
            )
        self.motion_modules = nn.ModuleList(MotionModule(out_channels) for _ in range(layers))
        if upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels)])

    def forward(
        self,
        hidden: torch.Tensor,
        skips: list[torch.Tensor],
        temb: torch.Tensor,
        text_rows: torch.Tensor,
        num_frames: int,
        upsample_size: tuple[int, int] | None,
    ) -> torch.Tensor:
        attentions = getattr(self, "attentions", [None] * len(self.resnets))
        for resnet, attention, motion in zip(self.resnets, attentions, self.motion_modules):
            hidden = resnet.forward_frames(torch.cat([hidden, skips.pop()], dim=1), temb, num_frames)
            if attention is not None:
                hidden = attention(hidden, text_rows)
            hidden = motion.forward_frames(hidden, num_frames)
        if hasattr(self, "upsamplers"):
            hidden = self.upsamplers[0](hidden, upsample_size)
        return hidden
