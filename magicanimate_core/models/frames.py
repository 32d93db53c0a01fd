"""Frame layouts of the 3D UNet.

Outside the UNet a video is `(b, c, f, h, w)`. Inside, it is a batch of frames `((b f), c, h, w)` (frames
of one video adjacent), so the per-frame convolutions and spatial transformers run on it without a layout
copy, in whichever memory format (contiguous or channels-last) the convolution weights carry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def frames_to_batch(video: torch.Tensor) -> torch.Tensor:
    """`(b, c, f, h, w)` -> `((b f), c, h, w)`, frames of one video contiguous."""
    return rearrange(video, "b c f h w -> (b f) c h w")


def batch_to_frames(images: torch.Tensor, num_frames: int) -> torch.Tensor:
    """`((b f), c, h, w)` -> `(b, c, f, h, w)`; inverse of `frames_to_batch` (a view, no copy)."""
    return rearrange(images, "(b f) c h w -> b c f h w", f=num_frames)


def add_video(frames: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """`frames` `((b f), c, h, w)` plus `video` `(b, c, f, h, w)`, in one pass, in `frames`' memory format."""
    b, _, f = video.shape[:3]
    return (frames.unflatten(0, (b, f)) + video.transpose(1, 2)).flatten(0, 1)


def repeat_rows(frames: torch.Tensor, copies: int) -> torch.Tensor:
    """`copies` copies of a batch stacked along rows, keeping the memory format (`Tensor.repeat` does not)."""
    return torch.cat([frames] * copies) if copies > 1 else frames


def group_norm_silu_over_frames(frames: torch.Tensor, num_frames: int, norm: nn.GroupNorm) -> torch.Tensor:
    """SiLU(GroupNorm) of `((b f), c, h, w)` frames with statistics pooled over each video's frames.

    Equals `norm` applied to the `(b, c, f, h, w)` video (the original's semantics: statistics over
    (C/G, F, H, W)) without moving the frames into that layout: the mean and variance are reduced over
    a strided view, and the affine map is one scale-and-shift pass followed by an in-place SiLU
    (channels-last frames on the CPU take the native kernel instead, `_native_group_norm_silu_nhwc`).
    """
    bf, c, h, w = frames.shape
    b, groups = bf // num_frames, norm.num_groups
    channels_last = not frames.is_contiguous() and frames.is_contiguous(memory_format=torch.channels_last)
    if channels_last and frames.device.type == "cpu":
        return _native_group_norm_silu_nhwc(frames, num_frames, norm)
    if channels_last:
        flat = frames.permute(0, 2, 3, 1).reshape(b, num_frames * h * w, c)  # a view of NHWC memory
        grouped = flat.view(b, -1, groups, c // groups)
    else:
        flat = frames.contiguous().view(b, num_frames, c, h * w)
        grouped = flat.view(b, num_frames, groups, -1)
    var, mean = torch.var_mean(grouped, dim=(1, 3), correction=0)  # (b, groups)
    scale = torch.rsqrt(var + norm.eps).repeat_interleave(c // groups, dim=1)
    shift = -mean.repeat_interleave(c // groups, dim=1) * scale
    if norm.affine:
        scale = scale * norm.weight
        shift = shift * norm.weight + norm.bias
    if channels_last:
        out = torch.addcmul(shift[:, None], flat, scale[:, None]).view(bf, h, w, c).permute(0, 3, 1, 2)
    else:
        out = torch.addcmul(shift[:, None, :, None], flat, scale[:, None, :, None]).view(bf, c, h, w)
    return F.silu(out, inplace=True)


def _native_group_norm_silu_nhwc(frames: torch.Tensor, num_frames: int, norm: nn.GroupNorm) -> torch.Tensor:
    """`group_norm_silu_over_frames` for channels-last frames on the CPU, by PyTorch's native GroupNorm.

    A video's NHWC frames `[f, h, w, c]` are one `(1, c, f*h, w)` channels-last image, so a single native
    call pools the statistics over all frames (5-7x faster here than reducing over a strided view). That
    CPU kernel takes the variance as E[x^2] - E[x]^2, which loses precision when a group's mean is large
    against its spread, so each group is centred on its mean first.
    """
    bf, c, h, w = frames.shape
    b, groups = bf // num_frames, norm.num_groups
    flat = frames.permute(0, 2, 3, 1).reshape(b, num_frames * h * w, c)  # a view of NHWC memory
    means = flat.sum(dim=1).view(b, groups, -1).sum(dim=2) / (flat.shape[1] * (c // groups))
    centred = flat - means.repeat_interleave(c // groups, dim=1)[:, None]
    video = centred.view(b, num_frames * h, w, c).permute(0, 3, 1, 2)
    out = F.group_norm(video, groups, norm.weight, norm.bias, norm.eps)
    return F.silu(out.permute(0, 2, 3, 1).reshape(bf, h, w, c).permute(0, 3, 1, 2), inplace=True)
