"""Video frames -> DensePose frames, streaming: estimate, paint labels, fit, smooth, colour."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np

from .backends import Estimator
from .render import colorize, paint_labels

FITS = ("source", "crop", "pad")  # output geometry choices offered by the node and the CLI


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
    fit_canvas: Callable[[np.ndarray], np.ndarray] | None = None,
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
    colorize(np.zeros((1, 1), np.uint8), colormap)

    def canvases() -> Iterator[np.ndarray]:
        done, iterator = 0, iter(frames)
        while batch := list(islice(iterator, max(1, batch_size))):
            for instances in estimator.detect(batch, score_threshold):
                canvas = paint_labels(instances.filter(max_people=max_people))
                if fit_canvas is not None:
                    canvas = fit_canvas(canvas)
                done += 1
                if progress is not None:
                    progress(done)
                yield canvas

    labels = smooth_labels(canvases()) if smooth else canvases()
    for canvas in labels:
        yield colorize(canvas, colormap)
