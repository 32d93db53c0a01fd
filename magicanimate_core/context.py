"""Context windows: which frames each UNet call denoises together."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def uniform_windows(
    num_frames: int, context_frames: int = 16, overlap: int = 4, *, closed_loop: bool = True
) -> list[list[int]]:
    """MagicAnimate's `uniform` schedule (stride 1, step 0, so identical at every denoising step).

    Windows of `context_frames` start every `context_frames - overlap` frames. With `closed_loop` (the
    reference behaviour) windows start while `start < num_frames` and wrap around modulo the clip, so the
    last one continues into the first frames. Without it the last window is aligned to the clip's end.
    """
    if context_frames < 1 or not 0 <= overlap < context_frames:
        raise ValueError(
            f"context_overlap must be in [0, context_frames); got overlap={overlap}, context_frames={context_frames}"
        )
    if num_frames <= context_frames:
        return [list(range(num_frames))]
    stride = context_frames - overlap
    if closed_loop:
        return [[(start + i) % num_frames for i in range(context_frames)] for start in range(0, num_frames, stride)]
    starts = list(range(0, num_frames - context_frames + 1, stride))
    if starts[-1] + context_frames < num_frames:
        starts.append(num_frames - context_frames)
    return [list(range(start, start + context_frames)) for start in starts]


def window_weights(context_frames: int, weighting: str) -> list[float]:
    """Per-position weights for fusing overlapping windows: `average` (reference) or `pyramid`."""
    if weighting == "average":
        return [1.0] * context_frames
    if weighting == "pyramid":
        return [float(min(i + 1, context_frames - i)) for i in range(context_frames)]
    raise ValueError(f"unknown window weighting {weighting!r}; choose 'average' or 'pyramid'")


@dataclass(frozen=True)
class WindowPlan:
    """The context windows of one run and how their noise predictions fuse into one per frame.

    Every window's prediction is added, position-weighted, into per-frame sums; `counts` holds each
    frame's total weight over all windows, so `sums / counts` is the weighted average over the windows
    that cover the frame (every frame is covered at least once). The plan is the same at every step.
    """

    windows: list[list[int]]  # frame indices of each window, in the reference's order
    weights: torch.Tensor  # [1, 1, window length, 1, 1] weight of each window position
    counts: torch.Tensor  # [1, 1, frames, 1, 1] total weight each frame receives per step

    @classmethod
    def build(
        cls, num_frames: int, context_frames: int, overlap: int, weighting: str, closed_loop: bool, device: torch.device
    ) -> WindowPlan:
        windows = uniform_windows(num_frames, context_frames, overlap, closed_loop=closed_loop)
        weights = torch.tensor(window_weights(len(windows[0]), weighting), device=device)[None, None, :, None, None]
        counts = torch.zeros((1, 1, num_frames, 1, 1), device=device)
        for window in windows:  # in window order, as the sums accumulate: the same float rounding
            counts[:, :, window] += weights
        return cls(windows, weights, counts)

    def groups(self, indices: list[int], per_call: int) -> list[list[int]]:
        """`indices` (window numbers) in runs of `per_call`: the windows batched into one UNet call."""
        return [indices[i : i + per_call] for i in range(0, len(indices), per_call)]
