"""Motion frames at the reference's size, and animations cropped back to the photo's own aspect ratio.

Both the Sampler node and the CLI use these: DensePose frames are fitted with nearest neighbour (every pixel
stays a palette colour) and padded with the frames' own background colour; a reference padded to a square
reports its `ContentRegion`, which `crop_to_content` cuts out of the animated frames again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .fit import fit_box, fit_image

MOTION_FITS = ("stretch", "crop", "pad")
_PAD_MARK = -1.0  # a value no [0, 1] pixel has: marks padded pixels before they get the background colour


@dataclass(frozen=True)
class ContentRegion:
    """The pixels of a fitted `frame_width x frame_height` picture that show the photo rather than padding."""

    top: int
    left: int
    height: int
    width: int
    frame_height: int
    frame_width: int

    @classmethod
    def of_fit(cls, source_height: int, source_width: int, width: int, height: int, mode: str) -> ContentRegion:
        """Where the photo lands when fitted to `width x height` with `mode` (the whole frame unless `pad`)."""
        if mode == "none":
            return cls(0, 0, source_height, source_width, source_height, source_width)
        top, left, content_h, content_w = fit_box(source_height, source_width, width, height, mode).content_region(
            width, height
        )
        return cls(top, left, content_h, content_w, height, width)


def background_colour(frame: torch.Tensor) -> torch.Tensor:
    """The most frequent colour on the border of one `[H, W, 3]` frame (DensePose background: (68, 1, 84))."""
    border = torch.cat([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    colours, counts = torch.unique(border, dim=0, return_counts=True)
    return colours[counts.argmax()]


def fit_motion(motion: torch.Tensor, width: int, height: int, mode: str = "stretch") -> torch.Tensor:
    """DensePose frames `[F, H, W, 3]` (floats in [0, 1]) at `width x height`; equal sizes are returned as is.

    `stretch` distorts (the original's resize), `crop` keeps the centre, `pad` adds the frames' background
    colour on the short sides. Resampling is nearest neighbour, so no new colours appear.
    """
    if mode not in MOTION_FITS:
        raise ValueError(f"unknown motion_fit {mode!r}; choose one of {', '.join(MOTION_FITS)}")
    if tuple(motion.shape[1:3]) == (height, width) or motion.shape[0] == 0:
        return motion
    fitted = fit_image(motion, width, height, mode, resample="nearest", fill=_PAD_MARK)
    padded = fitted[..., 0] == _PAD_MARK
    if bool(padded.any()):
        fitted = torch.where(padded[..., None], background_colour(motion[0]).to(fitted.dtype), fitted)
    return fitted


def crop_to_content(frames: torch.Tensor, region: ContentRegion) -> torch.Tensor:
    """Frames `[F, H, W, C]` cut to `region`, rescaled first when they are not at the region's frame size."""
    if tuple(frames.shape[1:3]) != (region.frame_height, region.frame_width):
        scale_h, scale_w = frames.shape[1] / region.frame_height, frames.shape[2] / region.frame_width
        region = ContentRegion(
            round(region.top * scale_h),
            round(region.left * scale_w),
            round(region.height * scale_h),
            round(region.width * scale_w),
            frames.shape[1],
            frames.shape[2],
        )
    return frames[:, region.top : region.top + region.height, region.left : region.left + region.width]
