"""Moving between video tensors `(b, c, f, h, w)` and per-frame image batches `((b f), c, h, w)`."""

from __future__ import annotations

import torch
from einops import rearrange


def frames_to_batch(video: torch.Tensor) -> torch.Tensor:
    """`(b, c, f, h, w)` -> `((b f), c, h, w)`, frames of one video contiguous."""
    return rearrange(video, "b c f h w -> (b f) c h w")


def batch_to_frames(images: torch.Tensor, num_frames: int) -> torch.Tensor:
    """`((b f), c, h, w)` -> `(b, c, f, h, w)`; inverse of `frames_to_batch`."""
    return rearrange(images, "(b f) c h w -> b c f h w", f=num_frames)


def per_frame(module: torch.nn.Module, video: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """Apply a 2-D module to every frame of a `(b, c, f, h, w)` video."""
    return batch_to_frames(module(frames_to_batch(video), *args, **kwargs), video.shape[2])
