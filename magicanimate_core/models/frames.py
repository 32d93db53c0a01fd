"""Moving between video tensors `(b, c, f, h, w)` and per-frame image batches `((b f), c, h, w)`."""

from __future__ import annotations

import torch


def frames_to_batch(video: torch.Tensor) -> torch.Tensor:
    """`(b, c, f, h, w)` -> `((b f), c, h, w)`, frames of one video contiguous."""
    b, c, f, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def batch_to_frames(images: torch.Tensor, num_frames: int) -> torch.Tensor:
    """`((b f), c, h, w)` -> `(b, c, f, h, w)`; inverse of `frames_to_batch`."""
    bf, c, h, w = images.shape
    return images.reshape(bf // num_frames, num_frames, c, h, w).permute(0, 2, 1, 3, 4)


def per_frame(module: torch.nn.Module, video: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """Apply a 2-D module to every frame of a `(b, c, f, h, w)` video."""
    num_frames = video.shape[2]
    return batch_to_frames(module(frames_to_batch(video), *args, **kwargs), num_frames)
