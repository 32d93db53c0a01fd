"""Fitting pictures and motion frames to the animation size: the pack's one crop / pad / stretch rule.

`fit_box` computes the geometry (which source window is kept, how much padding is added); `fit_image`
applies it. Photos resample bicubically through PIL on uint8, as the original resized its inputs; DensePose
frames and label maps resample with nearest neighbour (pixel centres), so every pixel keeps an exact palette
colour or part index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .frames import to_uint8

FIT_MODES = ("crop", "pad", "stretch", "none")
RESAMPLES = ("bicubic", "nearest")
MIN_SIZE = 8

Frames = TypeVar("Frames", torch.Tensor, np.ndarray)


@dataclass(frozen=True)
class FitBox:
    """The source window kept (`top`, `left`, `height`, `width`) and the padding added around it, in source pixels."""

    top: int
    left: int
    height: int
    width: int
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0

    @property
    def padded_size(self) -> tuple[int, int]:
        """(height, width) of the window after padding, before the resize."""
        return self.height + self.pad_top + self.pad_bottom, self.width + self.pad_left + self.pad_right

    def content_region(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the output pixels that show the source rather than padding."""
        padded_h, padded_w = self.padded_size
        top, left = round(self.pad_top * height / padded_h), round(self.pad_left * width / padded_w)
        bottom = height - round(self.pad_bottom * height / padded_h)
        right = width - round(self.pad_right * width / padded_w)
        return top, left, bottom - top, right - left


def check_fit(width: int, height: int, mode: str, resample: str = "bicubic") -> None:
    """ValueError for an unknown mode or resampler, or a target smaller than 8x8."""
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}; choose one of {', '.join(FIT_MODES)}")
    if resample not in RESAMPLES:
        raise ValueError(f"unknown resampling {resample!r}; choose one of {', '.join(RESAMPLES)}")
    if mode != "none" and (width < MIN_SIZE or height < MIN_SIZE):
        raise ValueError(f"target size {width}x{height} is too small; use at least {MIN_SIZE}x{MIN_SIZE}")


def fit_box(source_height: int, source_width: int, width: int, height: int, mode: str) -> FitBox:
    """Geometry of fitting a `source_height x source_width` picture to `width x height` with `mode`.

    `crop`: the centred window with the target's aspect ratio. `pad`: the whole picture, extended on both
    sides of the short axis to the target's aspect ratio. `stretch` / `none`: the whole picture.
    """
    h, w = source_height, source_width
    if mode == "crop":
        scale = max(width / w, height / h)
        crop_w, crop_h = min(w, round(width / scale)), min(h, round(height / scale))
        return FitBox((h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w)
    if mode == "pad":
        pad_w = max(0, math.ceil(h * width / height) - w)
        pad_h = max(0, math.ceil(w * height / width) - h)
        return FitBox(0, 0, h, w, pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)
    return FitBox(0, 0, h, w)


def fit_image(
    image: Frames,
    width: int,
    height: int,
    mode: str = "pad",
    *,
    resample: str = "bicubic",
    fill: float | None = None,
) -> Frames:
    """Fit `image` (`[..., H, W, C]`, torch or numpy; a label map as `[H, W, 1]`) to `height x width`.

    Padding repeats the edge pixels (`fill=None`, the original authors' advice for photos) or uses the
    constant `fill` (DensePose background). `bicubic` takes one float `[H, W, C]` image in [0, 1];
    `nearest` takes any leading frame dimensions and any dtype.
    """
    check_fit(width, height, mode, resample)
    if mode == "none":
        return image
    box = fit_box(image.shape[-3], image.shape[-2], width, height, mode)
    window = _pad(image[..., box.top : box.top + box.height, box.left : box.left + box.width, :], box, fill)
    if resample == "nearest":
        return _nearest(window, width, height)
    return _bicubic(window, width, height)


def fit_labels(labels: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """DensePose part-index maps `[..., H, W]` fitted with nearest neighbour; padding is background (0)."""
    return fit_image(labels[..., None], width, height, mode, resample="nearest", fill=0)[..., 0]


def square_label_fit(mode: str, size: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The DensePose output geometry: `source` keeps the video's size (None), `crop` / `pad` a `size` square."""
    if mode == "source":
        return None
    if mode not in ("crop", "pad"):
        raise ValueError(f"unknown output fit {mode!r}; choose one of source, crop, pad")
    check_fit(size, size, mode)
    return partial(fit_labels, width=size, height=size, mode=mode)


def _pad(image: Frames, box: FitBox, fill: float | None) -> Frames:
    if box.padded_size == (box.height, box.width):
        return image
    as_numpy = isinstance(image, np.ndarray)
    array = torch.from_numpy(image) if as_numpy else image
    spatial = array.movedim(-1, 0)  # padding acts on the last two dimensions
    flat = spatial.reshape(-1, 1, *spatial.shape[-2:])
    widths = (box.pad_left, box.pad_right, box.pad_top, box.pad_bottom)
    if fill is None:
        padded = torch.nn.functional.pad(flat.float(), widths, mode="replicate").to(flat.dtype)
    else:
        padded = torch.nn.functional.pad(flat, widths, mode="constant", value=fill)
    padded = padded.reshape(*spatial.shape[:-2], *padded.shape[-2:])
    result = padded.movedim(0, -1)
    return result.numpy() if as_numpy else result


def _nearest(image: Frames, width: int, height: int) -> Frames:
    rows, cols = image.shape[-3], image.shape[-2]
    if (rows, cols) == (height, width):
        return image
    row_index = ((np.arange(height) + 0.5) * rows / height).astype(np.int64)
    col_index = ((np.arange(width) + 0.5) * cols / width).astype(np.int64)
    if isinstance(image, torch.Tensor):
        row_index, col_index = torch.from_numpy(row_index), torch.from_numpy(col_index)
    return image[..., row_index[:, None], col_index[None, :], :]


def _bicubic(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Antialiased bicubic resize of one `[H, W, C]` float image through PIL on uint8."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    resized = Image.fromarray(to_uint8(image)).resize((width, height), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized).copy()).float() / 255
