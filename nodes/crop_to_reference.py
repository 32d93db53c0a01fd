"""MagicAnimate_CropToReference: animation frames cut back to the reference photo's own aspect ratio."""

from __future__ import annotations

import torch

from ..magicanimate_core.media.motion_fit import ContentRegion, crop_to_content
from .load_reference import CONTENT_TYPE


class MagicAnimate_CropToReference:
    DESCRIPTION = (
        "Removes the padding 'Load Reference (MagicAnimate)' added to fit a non-square photo (fit pad), so a "
        "9:16 portrait animated on a 512x512 square comes out 9:16 again. Without padding it changes nothing."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "crop"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The frames without the padded border [F, h, w, 3].",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "The animation, e.g. from 'MagicAnimate Sampler'."}),
                "content": (CONTENT_TYPE, {"tooltip": "The 'content' output of 'Load Reference (MagicAnimate)'."}),
            }
        }

    def crop(self, frames: torch.Tensor, content: ContentRegion) -> tuple[torch.Tensor]:
        return (crop_to_content(frames, content),)
