"""Video frames -> DensePose frames, streaming: estimate, paint labels, fit, smooth, colour."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np

from .backends import Estimator
from .render import colorize, paint_labels

FITS = ("source", "crop", "pad")


def fit_labels(labels: np.ndarray, fit: str = "source", size: int = 512) -> np.ndarray:
    """A label canvas [H, W] as is (`source`) or as a `size` x `size` square.

    `crop` keeps the centred square, `pad` adds background (label 0, the colormap's background colour) on
    both sides of the short axis; the square is then resized with nearest-neighbour sampling, so every
    output pixel keeps an exact palette colour.
    """
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    if fit == "source":
        return labels
    if size < 1:
        raise ValueError(f"output size must be positive, got {size}")
    height, width = labels.shape
    side = min(height, width) if fit == "crop" else max(height, width)
    square = np.zeros((side, side), dtype=labels.dtype)
    src_y, src_x = max(0, (height - side) // 2), max(0, (width - side) // 2)
    dst_y, dst_x = max(0, (side - height) // 2), max(0, (side - width) // 2)
    rows, cols = min(side, height), min(side, width)
    square[dst_y : dst_y + rows, dst_x : dst_x + cols] = labels[src_y : src_y + rows, src_x : src_x + cols]
    index = ((np.arange(size) + 0.5) * side / size).astype(np.int64)
    return square[index[:, None], index[None, :]]


def smooth_labels(canvases: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Per-pixel majority of the labels of frames t-1, t, t+1 (ties keep frame t; first and last unchanged)."""
    previous, current = None, None
    for following in canvases:
        if current is not None:
            yield current if previous is None else np.where(previous == following, previous, current)
        previous, current = current, following
    if current is not None:
        yield current


def extract_densepose(
    frames: Iterable[np.ndarray],
    estimator: Estimator,
    *,
    colormap: str = "viridis",
    score_threshold: float | None = None,
    max_people: int | None = None,
    fit: str = "source",
    size: int = 512,
    smooth: bool = False,
    batch_size: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """Yield one uint8 RGB DensePose frame per input frame (uint8 RGB [H, W, 3]), holding only a batch.

    Defaults reproduce vid2densepose: every detection with score > 0.05, source size, viridis, no
    smoothing. `batch_size` > 1 runs the backbone on several frames at once (faster on a GPU; the floats then
    differ from single-frame runs in the last bits). `progress(frames_done)` runs after each estimated
    frame; it may raise to cancel.
    """
    fit_labels(np.zeros((1, 1), np.uint8), fit, size)  # validate options before the first (slow) frame
    colorize(np.zeros((1, 1), np.uint8), colormap)

    def canvases() -> Iterator[np.ndarray]:
        done, iterator = 0, iter(frames)
        while batch := list(islice(iterator, max(1, batch_size))):
            for instances in estimator.detect(batch, score_threshold):
                canvas = fit_labels(paint_labels(instances.filter(max_people=max_people)), fit, size)
                done += 1
                if progress is not None:
                    progress(done)
                yield canvas

    labels = smooth_labels(canvases()) if smooth else canvases()
    for canvas in labels:
        yield colorize(canvas, colormap)
