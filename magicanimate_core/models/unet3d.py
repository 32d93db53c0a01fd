"""MagicAnimate's 3D UNet: SD1.5 spatial layers per frame + 20 AnimateDiff-v1 motion modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from .blocks3d import DownBlock3D, MidBlock3D, UpBlock3D
from .fast_paths import install_fast_paths
from .frames import add_video, batch_to_frames, frames_to_batch, group_norm_silu_over_frames, repeat_rows
from .reference_attention import install_plain_processors


class UNet3DConditionModel(nn.Module):
    """The denoising UNet, built from an SD1.5 `unet/config.json`; state-dict keys match the reference.

    Input and output are `(b, 4, f, h, w)` videos. ControlNet residuals are added to the skips and the
    mid-block output as in diffusers. With `cfg_copies=2` the down path (which both guidance halves
    compute identically) runs once and its results are duplicated to `[uncond rows ; cond rows]`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        channels = list(config["block_out_channels"])
        layers = config["layers_per_block"]
        groups = config["norm_num_groups"]
        eps = config["norm_eps"]
        heads = config["attention_head_dim"]  # SD1.5 naming: this is the number of heads
        text_dim = config["cross_attention_dim"]
        temb_channels = channels[0] * 4
        if config.get("down_block_types") != [
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ]:
            raise ValueError(f"unsupported UNet layout {config.get('down_block_types')}: expected SD1.5's")

        self.conv_in = nn.Conv2d(config["in_channels"], channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(channels[0], config["flip_sin_to_cos"], config["freq_shift"])
        self.time_embedding = TimestepEmbedding(channels[0], temb_channels)

        self.down_blocks = nn.ModuleList()
        for i, out_ch in enumerate(channels):
            last = i == len(channels) - 1
            self.down_blocks.append(
                DownBlock3D(
                    channels[max(i - 1, 0)],
                    out_ch,
                    temb_channels,
                    layers=layers,
                    groups=groups,
                    eps=eps,
                    heads=heads,
                    text_dim=None if last else text_dim,
                    downsample=not last,
                )
            )
        self.mid_block = MidBlock3D(channels[-1], temb_channels, groups=groups, eps=eps, heads=heads, text_dim=text_dim)

        self.up_blocks = nn.ModuleList()
        reversed_channels = channels[::-1]
        for i, out_ch in enumerate(reversed_channels):
            last = i == len(channels) - 1
            self.up_blocks.append(
                UpBlock3D(
                    reversed_channels[min(i + 1, len(channels) - 1)],
                    out_ch,
                    reversed_channels[max(i - 1, 0)],
                    temb_channels,
                    layers=layers + 1,
                    groups=groups,
                    eps=eps,
                    heads=heads,
                    text_dim=None if i == 0 else text_dim,
                    upsample=not last,
                )
            )
        self.conv_norm_out = nn.GroupNorm(groups, channels[0], eps=eps)  # joint over frames, then SiLU
        self.conv_out = nn.Conv2d(channels[0], config["out_channels"], kernel_size=3, padding=1)
        install_plain_processors(self)
        install_fast_paths(self)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    @property
    def deep_feature_channels(self) -> int:
        """Channels of the features that deep feature reuse keeps: the input of the last up block."""
        return self.config["block_out_channels"][1]

    @staticmethod
    def _text_rows(text: torch.Tensor, batch: int, num_frames: int) -> torch.Tensor:
        """The text embedding per frame row; one shared embedding stays a broadcast view (projected once)."""
        if text.shape[0] == 1:
            return text.expand(batch * num_frames, -1, -1)
        return text.expand(batch, -1, -1).repeat_interleave(num_frames, dim=0)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        text: torch.Tensor,
        down_residuals: list[torch.Tensor] | None = None,
        mid_residual: torch.Tensor | None = None,
        cfg_copies: int = 1,
        deep: DeepFeatureSlot | None = None,
    ) -> torch.Tensor:
        """`sample` `(b, c, f, h, w)`, `text` `(b or 1, tokens, dim)`; residuals are 5-D like the skips.

        `deep` (DeepCache-style reuse): when it holds `cached` deep features, only `conv_in`, the first
        down block and the last up block run, on those features; otherwise the whole UNet runs and the
        features entering the last up block are left in `deep.kept`.

        Inside, the video is a batch of frames `((b f), c, h, w)` in the memory format of `conv_in`'s
        weight (channels-last when the module was converted), so no block moves it between layouts.
        """
        batch, _, num_frames = sample.shape[:3]
        timesteps = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(batch)
        temb = self.time_embedding(self.time_proj(timesteps).to(self.dtype))
        text_rows = self._text_rows(text, batch, num_frames)
        memory_format = (
            torch.channels_last
            if self.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
            and not self.conv_in.weight.is_contiguous()
            else torch.contiguous_format
        )

        hidden = self.conv_in(frames_to_batch(sample).contiguous(memory_format=memory_format))
        skips = [hidden]
        reuse = deep is not None and deep.cached is not None
        for block in self.down_blocks[:1] if reuse else self.down_blocks:
            hidden, block_skips = block(hidden, temb, text_rows, num_frames)
            skips.extend(block_skips)
        if reuse:  # only the skips the last up block reads (ControlNet's deeper residuals go unused)
            skips = skips[: len(self.up_blocks[-1].resnets)]
        if down_residuals is not None:
            skips = [add_video(skip, residual) for skip, residual in zip(skips, down_residuals, strict=not reuse)]
        if not reuse:
            hidden = self.mid_block.enter(hidden, temb, num_frames)

        if cfg_copies > 1:
            hidden = repeat_rows(hidden, cfg_copies)
            skips = [repeat_rows(skip, cfg_copies) for skip in skips]
            temb = temb.repeat(cfg_copies, 1)
            text_rows = self._text_rows(text, batch * cfg_copies, num_frames)
            if mid_residual is not None:
                mid_residual = mid_residual.repeat(cfg_copies, 1, 1, 1, 1)

        if reuse:
            hidden = deep.cached
            up_blocks = self.up_blocks[-1:]
        else:
            hidden = self.mid_block.finish(hidden, temb, text_rows, num_frames)
            if mid_residual is not None:
                hidden = add_video(hidden, mid_residual)
            up_blocks = self.up_blocks
        for block in up_blocks:
            if deep is not None and block is self.up_blocks[-1]:
                deep.kept = hidden
            block_skips = [skips.pop() for _ in block.resnets][::-1]
            upsample_size = skips[-1].shape[-2:] if skips else None
            hidden = block(hidden, block_skips, temb, text_rows, num_frames, upsample_size)

        hidden = group_norm_silu_over_frames(hidden, num_frames, self.conv_norm_out)
        return batch_to_frames(self.conv_out(hidden), num_frames)


@dataclass
class DeepFeatureSlot:
    """One UNet call's deep features (the input of the last up block): `cached` to reuse, or `kept` once computed."""

    cached: torch.Tensor | None = None
    kept: torch.Tensor | None = None


@dataclass
class DeepFeatureReuse:
    """Deep features of one sampling call, recomputed every `every` steps (DeepCache-style; <= 1: every step).

    A step is recognised by its timestep. Within a step the UNet calls are keyed by their order and
    layout (guidance rows, sample shape), so each context window group reuses its own features; a call
    with no matching features from the last full step runs in full. Features are stored in the model
    dtype and dropped when the next full step starts. Size per window: halves x frames x C x h x w
    elements, e.g. SD1.5 at 512x512 with guidance: 2 x 16 x 640 x 64 x 64 x 2 bytes = 168 MB in fp16.
    """

    every: int
    _timestep: float | None = None
    _step: int = -1
    _call: int = 0
    _slots: dict[tuple[Any, ...], DeepFeatureSlot] = field(default_factory=dict)

    def slot(self, timestep: torch.Tensor, layout: tuple[Any, ...]) -> DeepFeatureSlot | None:
        """The slot for the next UNet call at `timestep` with `layout`; None when reuse is off."""
        if self.every <= 1:
            return None
        if float(timestep) != self._timestep:
            self._timestep, self._step, self._call = float(timestep), self._step + 1, 0
            if self._step % self.every == 0:
                self._slots.clear()
        key = (self._call, *layout)
        self._call += 1
        previous = self._slots.get(key)
        if self._step % self.every != 0 and previous is not None and previous.kept is not None:
            return DeepFeatureSlot(cached=previous.kept)
        self._slots[key] = DeepFeatureSlot()
        return self._slots[key]
