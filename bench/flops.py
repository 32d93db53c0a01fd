"""Analytic FLOP model of a run: what this pack computes, and what the original MagicAnimate computes.

Per-forward costs are the reference spec's §12.3 figures at 512x512 (FLOPs = 2 x MACs, batch 1), each split
into a part that does not depend on the resolution (the 77 text tokens' cross-attention K/V projections),
a part linear in the pixel count (convolutions, projections, temporal attention) and a part quadratic in it
(spatial self-attention QK^T and AV), so that other sizes are not simply scaled by H*W/512^2 (which would
overstate 256x256 by about 11 %). The splits are analytic (sums of L^2*C and 77*768*C over the blocks).
Checks with `torch.utils.flop_counter.FlopCounterMode`: every component on meta tensors at 512^2, 256^2 and
128^2 within 0.2 %; whole pipeline runs (full size, CPU, 64^2 and 128^2, several switches) within 1.2 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from magicanimate_core.options import SamplingOptions, Speedups

GIGA = 1e9


@dataclass(frozen=True)
class Cost:
    """GFLOPs of one forward at 512x512: constant + linear * s + quadratic * s^2, s = H*W / 512^2."""

    constant: float
    linear: float
    quadratic: float

    def at(self, scale: float) -> float:
        return (self.constant + self.linear * scale + self.quadratic * scale**2) * GIGA


# §12.3: SD1.5 UNet2D 803.3 GF = 2.95 text K/V + 122.5 self-attention QK/AV + the rest.
UNET2D = Cost(2.95, 677.85, 122.5)
MOTION = Cost(0.0, 301.4, 0.0)  # 20 motion modules, per frame of a 16-frame window
# The part of UNet2D + motion that both guidance halves share (conv_in, down blocks with their motion modules,
# mid resnet 0): computed once per window with `share_down_path`. Total 373.66 GF per frame.
DOWN_PATH = Cost(1.06, 323.6, 49.0)
# Reference read per conditional row (§12.3: +89.0 GF): to_k/to_v of the reference tokens (15.5 GF,
# projected per row by the original, once per step or per call here) + the extra keys' attention (73.5 GF).
READ_PROJECTION = Cost(0.0, 15.52, 0.0)
READ_ATTENTION = Cost(0.0, 0.0, 73.48)
PLAIN_RECOMPUTE = Cost(0.0, 30.9, 73.5)  # §12.3: the original's wasted self-attention of uncond rows, 104.4 GF
CONTROLNET = Cost(1.36, 232.94, 49.0)  # §12.3: 283.3 GF per frame
# Ours runs at batch 1 and stops after the last hooked norm1 (765.3 GF); the original: batch 2, full UNet2D.
APPEARANCE_TRUNCATED = Cost(2.88, 661.4, 101.0)
VAE_DECODE = Cost(0.0, 2480.14, 34.36)  # §12.3: 2514.5 GF per frame
VAE_ENCODE = Cost(0.0, 1082.34, 34.36)  # §12.3: 1116.7 GF
CLIP_TEXT = Cost(13.3, 0.0, 0.0)


@dataclass(frozen=True)
class RunShape:
    """Everything about a run that decides its FLOPs."""

    height: int
    width: int
    frames: int  # before padding
    steps: int
    context_frames: int = 16
    context_overlap: int = 4
    guidance_scale: float = 7.5
    padding_multiple: int = 16

    @property
    def scale(self) -> float:
        return self.height * self.width / 512**2

    @property
    def padded(self) -> int:
        return self.padding_multiple * math.ceil(self.frames / self.padding_multiple)

    @property
    def window(self) -> int:
        return min(self.context_frames, self.padded)

    def windows(self, closed_loop: bool = True) -> int:
        """UNet windows per step (reference spec §7; the open loop aligns its last window to the end)."""
        if self.padded <= self.context_frames:
            return 1
        stride = self.context_frames - self.context_overlap
        if closed_loop:
            return math.ceil(self.padded / stride)
        return math.ceil((self.padded - self.context_frames) / stride) + 1


def ours(shape: RunShape, speedups: Speedups, options: SamplingOptions, cached_kv: bool = True) -> float:
    """FLOPs this pack's pipeline runs (the CLIP embedding is computed once per pipeline and not counted).

    `cached_kv=False`: the reference tokens are projected on every UNet call (`exact_off.uncached_reference`).
    """
    s, c = shape.scale, shape.window
    windows = shape.windows(options.closed_loop)
    calls = math.ceil(windows / speedups.windows_per_call)
    guided = math.ceil(options.guidance_until * shape.steps) if shape.guidance_scale > 1.0 else 0
    unet3d = UNET2D.at(s) + MOTION.at(s)
    shared = speedups.share_down_path and not speedups.sequential_cfg
    guided_window = (
        c * DOWN_PATH.at(s) + 2 * c * (unet3d - DOWN_PATH.at(s)) if shared else 2 * c * unet3d
    ) + c * READ_ATTENTION.at(s)
    plain_window = c * (unet3d + READ_ATTENTION.at(s))
    projections_per_step = 1 if cached_kv else calls
    per_step = (
        APPEARANCE_TRUNCATED.at(s) + shape.padded * CONTROLNET.at(s) + projections_per_step * READ_PROJECTION.at(s)
    )
    unet = guided * windows * guided_window + (shape.steps - guided) * windows * plain_window
    return shape.steps * per_step + unet + VAE_ENCODE.at(s) + shape.frames * VAE_DECODE.at(s)


def reference(shape: RunShape) -> float:
    """FLOPs of the original MagicAnimate at the same size, frames, steps and overlap (§12.4's model)."""
    s, c = shape.scale, shape.window
    row = UNET2D.at(s) + MOTION.at(s) + READ_PROJECTION.at(s) + READ_ATTENTION.at(s)
    window = 2 * c * row + c * PLAIN_RECOMPUTE.at(s)
    per_step = 2 * UNET2D.at(s) + shape.padded * CONTROLNET.at(s) + shape.windows() * window
    return shape.steps * per_step + VAE_ENCODE.at(s) + shape.padded * VAE_DECODE.at(s) + 2 * CLIP_TEXT.at(s)
