"""Float frames in [0, 1] <-> uint8 RGB, with the pack's one rounding rule, and the IMAGE range check.

Rounding: `round(x * 255)` after clamping to [0, 1], ties to even (torch.round / numpy.rint). The nodes,
both CLIs and the video writer all convert through `to_uint8`, so they write the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """`[..., H, W, C]` floats in [0, 1] (or uint8, passed through) -> uint8 RGB; extra channels dropped."""
    if isinstance(images, np.ndarray):
        if images.dtype == np.uint8:
            return images[..., :3]
        images = torch.from_numpy(images)
    scaled = images[..., :3].detach().to("cpu", torch.float32).clamp(0, 1) * 255
    return scaled.round_().to(torch.uint8).numpy()


def from_uint8(frames: Iterable[np.ndarray]) -> torch.Tensor:
    """uint8 RGB frames -> float32 `[N, H, W, 3]` in [0, 1] on the CPU (no frames -> `[0, 0, 0, 3]`)."""
    stacked = [torch.from_numpy(np.ascontiguousarray(frame)) for frame in frames]
    if not stacked:
        return torch.zeros((0, 0, 0, 3), dtype=torch.float32)
    return torch.stack(stacked).to(torch.float32).div_(255)


def check_image_range(images: torch.Tensor, name: str) -> None:
    """Refuse an IMAGE batch that is not finite floats in [0, 1] (0..255 values, NaN or infinite pixels).

    `name` says where the batch came from, e.g. "motion (the node connected to the Sampler's motion input)";
    the message names the bad values and the fix.
    """
    if not images.is_floating_point():
        raise ValueError(
            f"{name}: pixels are {images.dtype}, but IMAGE values must be floats in [0, 1]; "
            "convert them with x / 255 in the node that produced them"
        )
    if images.numel() == 0:
        return
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        frames = (~finite).reshape(images.shape[0], -1).any(1).nonzero().flatten().tolist() if images.ndim == 4 else []
        where = f" in {len(frames)} frames (the first is frame {frames[0]})" if frames else ""
        raise ValueError(
            f"{name}: {bad} of {images.numel()} pixel values are NaN or infinite{where}; a black or empty result "
            "would follow. Fix or replace the node that produced these images"
        )
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        hint = "; they look like 0..255 values: divide them by 255" if high > 1.5 else "; clamp them to [0, 1]"
        raise ValueError(
            f"{name}: pixel values span [{low:g}, {high:g}], outside ComfyUI's IMAGE range [0, 1]{hint} in the "
            "node that produced them"
        )
