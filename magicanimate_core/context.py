"""Context windows: which frames each UNet call denoises together."""

from __future__ import annotations


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
