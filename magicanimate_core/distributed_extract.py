"""DensePose extraction under torchrun: each rank runs the R-CNN on a contiguous share of the frames.

Every rank decodes the motion itself (twice: once to count the frames, once for its share), extracts
its `split_windows` share and the frames meet on rank 0 through one all-reduce per frame (the owner's
frame, zeros elsewhere; uint8 values summed in float32 are exact). Ranks without frames only join the
all-reduces, so no rank waits on another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np
import torch

from .distributed import WindowShare, split_windows


def extract_on_ranks(
    share: WindowShare,
    frames: Callable[[], Iterator[np.ndarray]],
    extract: Callable[[Iterator[np.ndarray]], Iterable[np.ndarray]],
) -> list[np.ndarray]:
    """Every frame extracted, in order, on rank 0 ([] on the other ranks).

    `frames()` decodes the motion afresh each call; `extract` maps frames to uint8 frames of the same size,
    each frame on its own (the CLI's extraction: no smoothing across frames). An error on any rank ends
    every rank with its message.
    """
    with share.together():
        shapes = [frame.shape for frame in frames()]
        mine = split_windows(len(shapes), share.world_size, share.rank)
        local = list(extract(islice(frames(), mine[0], mine[-1] + 1))) if mine else []
        for index, frame in zip(mine, local, strict=True):
            if frame.shape != shapes[index]:
                raise ValueError(f"frame {index}: extracted {frame.shape}, decoded {shapes[index]}; need the same size")
    gathered = []
    for index, shape in enumerate(shapes):
        part = torch.zeros(shape, dtype=torch.float32)
        if mine and mine[0] <= index <= mine[-1]:
            part.copy_(torch.from_numpy(local[index - mine[0]]))
        total = share.sum(part)
        if share.leader:
            gathered.append(total.to(torch.uint8).numpy())
    return gathered
