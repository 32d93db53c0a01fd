"""Bringing images to the size MagicAnimate runs at, and padding clips to whole noise periods."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

FIT_MODES = ("crop", "pad", "stretch", "none")


def _resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bicubic (antialiased) resize of `[H, W, C]` floats through PIL on uint8, as the reference resizes."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    resized = Image.fromarray(array).resize((width, height), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized).copy()).float() / 255


def fit_image(image: torch.Tensor, width: int, height: int, mode: str = "pad") -> torch.Tensor:
    """Fit `[H, W, C]` floats in [0, 1] to `height x width`.

    `crop`: scale to cover, then centre-crop. `pad`: edge-pad to the target aspect ratio (the original
    authors' advice), then scale. `stretch`: scale each axis independently. `none`: unchanged.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}; choose one of {', '.join(FIT_MODES)}")
    if mode == "none":
        return image
    if width < 8 or height < 8:
        raise ValueError(f"target size {width}x{height} is too small; use at least 8x8")
    h, w = image.shape[:2]
    if mode == "crop":
        scale = max(width / w, height / h)
        crop_w, crop_h = min(w, round(width / scale)), min(h, round(height / scale))
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        image = image[top : top + crop_h, left : left + crop_w]
    elif mode == "pad":
        target_ratio = width / height
        pad_w = max(0, math.ceil(h * target_ratio) - w)
        pad_h = max(0, math.ceil(w / target_ratio) - h)
        chw = image.permute(2, 0, 1).unsqueeze(0)
        chw = F.pad(chw, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")
        image = chw[0].permute(1, 2, 0)
    return _resize(image, width, height)


def padded_length(num_frames: int, multiple: int = 16) -> int:
    """Frames after edge-padding to a whole number of noise periods."""
    return multiple * math.ceil(num_frames / multiple)
