"""Rendered DensePose RGB frames -> part indices 0..24: the inverse of `render.colorize`.

Pixels holding an exact palette colour (our renderings, lossless files) map back exactly. Other pixels (lossy
video) take the nearest palette colour in a luma-weighted YCbCr space (both palettes change brightness steadily
from label to label, and 4:2:0 video keeps luma at full resolution while it blurs colour across part edges);
where such a pixel's label then differs from a neighbour's, it takes the majority label of its 3x3 window (its
own label wins ties): compression blurs part edges into the colours of the labels in between.
"""

from __future__ import annotations

import numpy as np

from .render import COLORMAPS, NUM_PART_LABELS, palette

AUTO = "auto"
MAX_MEAN_DISTANCE = 24.0  # mean weighted distance to the nearest palette colour above which frames are not DensePose
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_WEIGHTS = np.array([1.0, 0.5, 0.5], np.float32)  # luma counts twice as much as each colour difference
_CHUNK = 1 << 16


def _codes(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> int32 [...] packed 0xRRGGBB."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _space(rgb: np.ndarray) -> np.ndarray:
    """uint8 or float RGB [N, 3] -> weighted YCbCr float32 [N, 3]."""
    return np.asarray(rgb, np.float32) @ (_YCBCR.T * _WEIGHTS)


def _nearest(rgb: np.ndarray, colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest of `colours`, its distance) for each pixel of `rgb` [N, 3], in chunks."""
    targets = _space(colours)
    index = np.empty(len(rgb), np.uint8)
    distance = np.empty(len(rgb), np.float32)
    for start in range(0, len(rgb), _CHUNK):
        points = _space(rgb[start : start + _CHUNK])
        squared = (points * points).sum(1, keepdims=True) - 2 * points @ targets.T + (targets * targets).sum(1)
        index[start : start + _CHUNK] = squared.argmin(1)
        distance[start : start + _CHUNK] = np.sqrt(np.maximum(squared.min(1), 0))
    return index, distance


def detect_colormap(frames: np.ndarray) -> str:
    """The colormap (`viridis` or `parula-black`) whose palette fits uint8 RGB `frames` [..., H, W, 3] best.

    ValueError when neither fits: the frames are then not DensePose renderings.
    """
    pixels = np.asarray(frames)[..., :3].reshape(-1, 3)
    sample = pixels[:: max(1, len(pixels) // 50_000)]
    scores = {name: float(_nearest(sample, palette(name))[1].mean()) for name in COLORMAPS}
    best = min(scores, key=scores.get)
    if scores[best] > MAX_MEAN_DISTANCE:
        raise ValueError(
            f"these frames do not look like DensePose renderings (mean colour distance {scores[best]:.1f} to the "
            f"nearest {best} part colour); convert the video with 'Video to DensePose' or "
            "`python -m densepose_node extract` first"
        )
    return best


def labels_from_rgb(frames: np.ndarray, colormap: str = AUTO) -> np.ndarray:
    """uint8 RGB DensePose frames [..., H, W, 3] -> uint8 part indices [..., H, W] (0 = background).

    `colormap` is `viridis`, `parula-black` or `auto` (detected with `detect_colormap`). Exact palette colours
    map exactly; any other colour goes to the nearest part colour.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-1] < 3:
        raise ValueError(f"expected uint8 RGB frames [..., H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    if colormap == AUTO:
        colormap = detect_colormap(frames)
    colours = palette(colormap)
    codes = _codes(frames[..., :3])
    table = _codes(colours)
    order = np.argsort(table)
    position = np.searchsorted(table[order], codes).clip(0, NUM_PART_LABELS)
    labels = order[position].astype(np.uint8)
    inexact = table[labels] != codes
    if inexact.any():
        lossy = codes[inexact]
        seen = np.zeros(1 << 24, bool)  # dedupe colours without sorting: a compressed frame has few thousand
        seen[lossy] = True
        unique = np.flatnonzero(seen)
        lookup = np.zeros(1 << 24, np.uint8)
        lookup[unique] = _nearest(np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], -1), colours)[0]
        labels[inexact] = lookup[lossy]
        flat = labels.reshape(-1, *labels.shape[-2:])
        flat[...] = _majority(flat, inexact.reshape(flat.shape))
    return labels


def _majority(labels: np.ndarray, inexact: np.ndarray) -> np.ndarray:
    """[N, H, W] labels with each `inexact` pixel on a label edge replaced by its 3x3 window's majority."""
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = labels.shape[1:]
    shifts = [(dy, dx) for dy in range(3) for dx in range(3)]
    edge = np.zeros(labels.shape, bool)
    for dy, dx in shifts:
        edge |= padded[:, dy : dy + height, dx : dx + width] != labels
    frame, row, col = np.nonzero(edge & inexact)
    out = labels.copy()
    for start in range(0, frame.size, _CHUNK):
        f, r, c = frame[start : start + _CHUNK], row[start : start + _CHUNK], col[start : start + _CHUNK]
        window = np.stack([padded[f, r + dy, c + dx] for dy, dx in shifts], 1)
        votes = (window[:, :, None] == window[:, None, :]).sum(1) * 2 + (window == window[:, 4:5])
        out[f, r, c] = window[np.arange(len(window)), votes.argmax(1)]
    return out
