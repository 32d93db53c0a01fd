"""Down, mid and up blocks of the 3D UNet: SD1.5 blocks applied per frame, plus motion modules."""

from __future__ import annotations

import torch
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from torch import nn

from .frames import batch_to_frames, frames_to_batch, per_frame
from .motion_module import MotionModule
from .resnet3d import ResnetBlock3D


class Downsampler(nn.Module):
    """Stride-2 3x3 convolution (SD1.5's `downsamplers.0.conv`), applied per frame by the caller."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


class SpatialTransformer(Transformer2DModel):
    """SD1.5's Transformer2D run on every frame, with the text embedding repeated per frame."""

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        num_frames = video.shape[2]
        text = text.repeat_interleave(num_frames, dim=0)
        out = super().forward(frames_to_batch(video), encoder_hidden_states=text, return_dict=False)[0]
        return batch_to_frames(out, num_frames)


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
        self, hidden: torch.Tensor, temb: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        attentions = getattr(self, "attentions", [None] * len(self.resnets))
        for resnet, attention, motion in zip(self.resnets, attentions, self.motion_modules):
            hidden = resnet(hidden, temb)
            if attention is not None:
                hidden = attention(hidden, text)
            hidden = motion(hidden)
            skips.append(hidden)
        if hasattr(self, "downsamplers"):
            hidden = per_frame(self.downsamplers[0], hidden)
            skips.append(hidden)
        return hidden, skips


class MidBlock3D(nn.Module):
    """resnet -> spatial transformer -> resnet (no motion module in the mid block)."""

    def __init__(self, channels: int, temb_channels: int, *, groups: int, eps: float, heads: int, text_dim: int):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock3D(channels, channels, temb_channels, groups, eps) for _ in range(2))
        self.attentions = nn.ModuleList([spatial_transformer(channels, heads, groups, text_dim)])

    def enter(self, hidden: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """The first resnet: the last computation that the two guidance halves share."""
        return self.resnets[0](hidden, temb)

    def finish(self, hidden: torch.Tensor, temb: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Spatial transformer (the first reference-attention block) and the second resnet."""
        return self.resnets[1](self.attentions[0](hidden, text), temb)


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
        text: torch.Tensor,
        upsample_size: tuple[int, int] | None,
    ) -> torch.Tensor:
        attentions = getattr(self, "attentions", [None] * len(self.resnets))
        for resnet, attention, motion in zip(self.resnets, attentions, self.motion_modules):
            hidden = resnet(torch.cat([hidden, skips.pop()], dim=1), temb)
            if attention is not None:
                hidden = attention(hidden, text)
            hidden = motion(hidden)
        if hasattr(self, "upsamplers"):
            hidden = per_frame(self.upsamplers[0], hidden, upsample_size)
        return hidden
