"""Float frames in [0, 1] <-> uint8 RGB, with the pack's one rounding rule, and the IMAGE range check.

Rounding: `round(x * 255)` after clamping to [0, 1], ties to even (torch.round / numpy.rint). The nodes,
both CLIs and the video writer all convert through `to_uint8`, so they write the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

_SLICE_VALUES = 1 << 26  # values checked at a time by check_image_range (256 MB of float32)


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
    the message names the bad values and the fix. Checked a slice at a time, so the temporaries stay small
    even for an 8000x8000 batch (or a broadcast view of one).
    """
    if not images.is_floating_point():
        raise ValueError(
            f"{name}: pixels are {images.dtype}, but IMAGE values must be floats in [0, 1]; "
            "convert them with x / 255 in the node that produced them"
        )
    low, high = math.inf, -math.inf
    for _, part in _slices(_distinct(images)):
        part_low, part_high = float(part.amin()), float(part.amax())  # NaN if the part holds one
        if not (math.isfinite(part_low) and math.isfinite(part_high)):
            _refuse_non_finite(images, name)
        low, high = min(low, part_low), max(high, part_high)
    if low < 0 or high > 1:
        hint = "; they look like 0..255 values: divide them by 255" if high > 1.5 else "; clamp them to [0, 1]"
        raise ValueError(
            f"{name}: pixel values span [{low:g}, {high:g}], outside ComfyUI's IMAGE range [0, 1]{hint} in the "
            "node that produced them"
        )


def _distinct(images: torch.Tensor) -> torch.Tensor:
    """`images` without the repeats of a broadcast view (stride-0 dimensions): the same values, fewer of them."""
    for dim, (size, stride) in enumerate(zip(images.shape, images.stride())):
        if stride == 0 and size > 1:
            images = images.narrow(dim, 0, 1)
    return images


def _refuse_non_finite(images: torch.Tensor, name: str) -> None:
    bad: dict[int, int] = {}
    for first, part in _slices(images):
        counts = torch.count_nonzero(~torch.isfinite(part).flatten(1), dim=1).tolist()
        for offset, count in enumerate(counts):
            if count:
                bad[first + offset] = bad.get(first + offset, 0) + count
    where = f" in {len(bad)} frames (the first is frame {min(bad)})" if images.ndim == 4 else ""
    raise ValueError(
        f"{name}: {sum(bad.values())} of {images.numel()} pixel values are NaN or infinite{where}; a black or "
        "empty result would follow. Fix or replace the node that produced these images"
    )


def _slices(images: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(index of its first frame, a `[n, ...]` view of n whole frames, or of some rows of one frame), covering
    `images` in parts of at most about `_SLICE_VALUES` values (a few large reductions cost far less than many
    small ones).
    """
    frames = images if images.ndim == 4 else images[None]
    if not frames.numel():
        return
    per_frame = frames[0].numel()
    if per_frame <= _SLICE_VALUES:
        step = _SLICE_VALUES // per_frame
        for first in range(0, frames.shape[0], step):
            yield first, frames[first : first + step]
        return
    rows = max(1, _SLICE_VALUES // frames[0][0].numel())
    for index, frame in enumerate(frames):
        for part in frame.split(rows):
            yield index, part[None]
