"""DefaultPredictor's input path: shortest-edge resize with Pillow bilinear, mean subtraction, pad to 32."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

PIXEL_MEAN_BGR = (103.530, 116.280, 123.675)
SIZE_DIVISIBILITY = 32


def resized_size(height: int, width: int, short_edge: int = 800, max_size: int = 1333) -> tuple[int, int]:
    """(new_h, new_w) of `ResizeShortestEdge`: short side to `short_edge`, long side capped at `max_size`."""
    scale = short_edge * 1.0 / min(height, width)
    new_h, new_w = (short_edge * 1.0, scale * width) if height < width else (scale * height, short_edge * 1.0)
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_bgr(frame_bgr: np.ndarray, short_edge: int = 800, max_size: int = 1333) -> np.ndarray:
    """Resize a uint8 HxWx3 frame as detectron2 does (Pillow's BILINEAR, which widens when shrinking)."""
    new_h, new_w = resized_size(*frame_bgr.shape[:2], short_edge, max_size)
    if (new_h, new_w) == frame_bgr.shape[:2]:
        return frame_bgr
    return np.asarray(Image.fromarray(frame_bgr).resize((new_w, new_h), Image.BILINEAR))


def network_input(
    frames_bgr: Sequence[np.ndarray], short_edge: int = 800, max_size: int = 1333
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Batch [B, 3, H', W'] float32 (mean-subtracted, zero-padded to multiples of 32) and the unpadded sizes."""
    resized = [resize_bgr(np.ascontiguousarray(frame), short_edge, max_size) for frame in frames_bgr]
    sizes = [image.shape[:2] for image in resized]
    pad_h, pad_w = (-(-max(size[i] for size in sizes) // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY for i in (0, 1))
    batch = torch.zeros(len(resized), 3, pad_h, pad_w)
    mean = torch.tensor(PIXEL_MEAN_BGR).view(-1, 1, 1)
    for i, image in enumerate(resized):
        chw = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1))
        batch[i, :, : image.shape[0], : image.shape[1]] = chw - mean
    return batch, [(int(h), int(w)) for h, w in sizes]
