"""ControlNet residuals per frame, kept only while a context window still needs them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch

ComputeResiduals = Callable[[list[int]], list[list[torch.Tensor]]]


class ControlResidualCache:
    """Residuals for one denoising step: computed once per frame on first use, dropped after last use.

    ControlNet is a per-frame function, so this gives the reference's numbers while holding at most the
    frames shared by overlapping windows (and the wrap-around of the closed loop), never the whole clip.
    A frame is dropped as soon as the windows that use it have been handed out (the stacked residuals
    returned are copies), and a frame kept for a later window is copied out of ControlNet's batched
    output, so that output is freed before the UNet runs.
    """

    def __init__(self, compute: ComputeResiduals, windows: list[list[int]]) -> None:
        self.compute = compute
        self.uses_left = Counter(frame for window in windows for frame in window)
        self.frames: dict[int, list[torch.Tensor]] = {}

    def for_windows(self, windows: list[list[int]]) -> list[torch.Tensor]:
        """Residuals `[len(windows), C, F, h, w]` per level (12 down levels, then mid) for the windows."""
        needed = sorted({f for window in windows for f in window} - self.frames.keys())
        if needed:
            self.frames.update(zip(needed, self.compute(needed)))
        levels = len(next(iter(self.frames.values())))
        stacked = [
            torch.stack([torch.stack([self.frames[f][level] for f in window], dim=1) for window in windows])
            for level in range(levels)
        ]
        self.uses_left.subtract(f for window in windows for f in window)
        for frame in list(self.frames):
            if self.uses_left[frame] <= 0:
                del self.frames[frame]
            elif frame in needed:  # own memory, not a view that keeps the whole batch alive
                self.frames[frame] = [level.clone() for level in self.frames[frame]]
        return stacked
