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


COMPONENTS = ("text_encoder", "vae_encode", "appearance_encoder", "controlnet", "unet", "vae_decode")


def ours_breakdown(
    shape: RunShape, speedups: Speedups, options: SamplingOptions, cached_kv: bool = True
) -> dict[str, float]:
    """FLOPs this pack's pipeline runs, per component (keys: `COMPONENTS`).

    The CLIP embedding is computed once per pipeline and not counted (text_encoder 0). The reference tokens'
    K/V projections count under unet. `cached_kv=False`: they are projected on every UNet call
    (`exact_off.uncached_reference`).
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
    unet = guided * windows * guided_window + (shape.steps - guided) * windows * plain_window
    return {
        "text_encoder": 0.0,
        "vae_encode": VAE_ENCODE.at(s),
        "appearance_encoder": shape.steps * APPEARANCE_TRUNCATED.at(s),
        "controlnet": shape.steps * shape.padded * CONTROLNET.at(s),
        "unet": unet + shape.steps * projections_per_step * READ_PROJECTION.at(s),
        "vae_decode": shape.frames * VAE_DECODE.at(s),
    }


def ours(shape: RunShape, speedups: Speedups, options: SamplingOptions, cached_kv: bool = True) -> float:
    """Total FLOPs this pack's pipeline runs (the sum of `ours_breakdown`)."""
    return sum(ours_breakdown(shape, speedups, options, cached_kv).values())


def reference_breakdown(shape: RunShape) -> dict[str, float]:
    """FLOPs of the original MagicAnimate per component, same size, frames, steps and overlap (§12.4's model).

    The original decodes the padded frames, runs its appearance encoder at batch 2 through the whole UNet2D and
    encodes the prompt twice (conditional and empty).
    """
    s, c = shape.scale, shape.window
    row = UNET2D.at(s) + MOTION.at(s) + READ_PROJECTION.at(s) + READ_ATTENTION.at(s)
    window = 2 * c * row + c * PLAIN_RECOMPUTE.at(s)
    return {
        "text_encoder": 2 * CLIP_TEXT.at(s),
        "vae_encode": VAE_ENCODE.at(s),
        "appearance_encoder": shape.steps * 2 * UNET2D.at(s),
        "controlnet": shape.steps * shape.padded * CONTROLNET.at(s),
        "unet": shape.steps * shape.windows() * window,
        "vae_decode": shape.padded * VAE_DECODE.at(s),
    }


def reference(shape: RunShape) -> float:
    """Total FLOPs of the original MagicAnimate (the sum of `reference_breakdown`)."""
    return sum(reference_breakdown(shape).values())


def table(shape: RunShape) -> str:
    """GFLOP per output frame per component, ours (default speed-ups and options) next to the original's."""
    mine = ours_breakdown(shape, Speedups(), SamplingOptions())
    theirs = reference_breakdown(shape)
    lines = [
        f"{shape.height}x{shape.width}, {shape.frames} frames, {shape.steps} steps, guidance {shape.guidance_scale}: "
        "GFLOP per output frame",
        f"{'component':<20} {'ours':>10} {'original':>10} {'orig/ours':>10}",
    ]
    for name in (*COMPONENTS, "total"):
        a = sum(mine.values()) if name == "total" else mine[name]
        b = sum(theirs.values()) if name == "total" else theirs[name]
        ratio = f"{b / a:>10.2f}" if a else f"{'-':>10}"
        lines.append(f"{name:<20} {a / shape.frames / GIGA:>10.1f} {b / shape.frames / GIGA:>10.1f} {ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.flops`: the per-component FLOP table at the given size, frame counts and steps."""
    import argparse

    parser = argparse.ArgumentParser(description="Analytic FLOPs per component, this pack next to the original.")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float, default=7.5)
    args = parser.parse_args(argv)
    for frames in args.frames:
        print(table(RunShape(*args.size, frames, args.steps, guidance_scale=args.guidance_scale)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
