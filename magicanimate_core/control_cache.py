"""ControlNet work per frame: residuals kept while a window still needs them, embeddings across steps."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator

import torch
from torch import nn

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


# Host memory for conditioning embeddings kept across steps (CPU runs): 48 frames of the small test model take
# 12 MiB, 512x512 frames of the real one 5 MiB each; frames past the cap are embedded again at every step.
CPU_CONDITIONING_CACHE_BYTES = 256 * 2**20


class ConditioningEmbeddings:
    """ControlNet's conditioning embedding of each motion frame, computed once per call and reused at every step.

    The embedding (ControlNet's convolution stack over the DensePose image) depends on the frame alone, not
    on the step or the latents. Batches of new frames are kept while the total stays within `max_bytes`;
    later batches are embedded again at every step, as the reference does. A frame repeated in one call
    (the padding repeats the last one) is embedded once; the video stays bitwise the one ControlNet gives
    when it embeds every padded frame itself (tests/core/test_call_counts.py).
    """

    def __init__(self, controlnet: nn.Module, max_bytes: int) -> None:
        self.controlnet = controlnet
        self.max_bytes = max_bytes
        self.kept: dict[int, torch.Tensor] = {}
        self.kept_bytes = 0

    @staticmethod
    def applies_to(controlnet: nn.Module) -> bool:
        """Only for RGB conditioning: ControlNet flips a BGR conditioning image before embedding it."""
        return controlnet.config.controlnet_conditioning_channel_order == "rgb"

    def __call__(self, frames: list[int], images: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
        """Embeddings `[len(frames), C, h, w]` of motion frames `frames`; `images` loads the ones not kept."""
        missing = [frame for frame in dict.fromkeys(frames) if frame not in self.kept]
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            embedded = self._keep(self.controlnet.controlnet_cond_embedding(images(missing)), missing)
            if missing == frames:
                return embedded
            fresh = dict(zip(missing, embedded))
        return torch.stack([self.kept[frame] if frame in self.kept else fresh[frame] for frame in frames])

    def _keep(self, embedded: torch.Tensor, frames: list[int]) -> torch.Tensor:
        if self.kept_bytes + embedded.nbytes <= self.max_bytes:
            self.kept.update(zip(frames, embedded))
            self.kept_bytes += embedded.nbytes
        return embedded

    @contextlib.contextmanager
    def passed_to_controlnet(self) -> Iterator[None]:
        """Within the block, ControlNet takes `controlnet_cond` already embedded."""
        embedding = self.controlnet.controlnet_cond_embedding
        self.controlnet.controlnet_cond_embedding = nn.Identity()
        try:
            yield
        finally:
            self.controlnet.controlnet_cond_embedding = embedding
