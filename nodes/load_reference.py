"""MagicAnimate_LoadReference: the reference picture, fitted to the animation size."""

from __future__ import annotations

import torch
from PIL import Image

from ..magicanimate_core.media.fit import FIT_MODES, fit_image
from ..magicanimate_core.media.images import read_image
from ..magicanimate_core.media.motion_fit import ContentRegion
from . import comfy_adapter as comfy
from . import input_files

IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)
CONTENT_TYPE = "MAGICANIMATE_CONTENT"


class MagicAnimate_LoadReference:
    DESCRIPTION = (
        "Loads the picture of the person to animate from ComfyUI's input folder and fits it to the animation "
        "size. MagicAnimate works best on square 512x512 inputs: 'pad' (edge padding, as the original "
        "authors advise) keeps the whole picture, 'crop' keeps its centre."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "MASK", CONTENT_TYPE)
    RETURN_NAMES = ("image", "mask", "content")
    OUTPUT_TOOLTIPS = (
        "The fitted reference, one image [1, H, W, 3].",
        "1 where the picture is transparent.",
        "Where the photo lies inside the padding; 'Crop To Reference' cuts the animation back to it.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 512, "min": 8, "max": 2048, "step": 8}
        return {
            "required": {
                "image": (
                    comfy.input_files(IMAGE_SUFFIXES),
                    {"image_upload": True, "tooltip": "A picture in ComfyUI's input folder (upload one here)."},
                ),
                "fit": (
                    FIT_MODES,
                    {
                        "default": "pad",
                        "tooltip": (
                            "How to reach width x height: crop = scale and cut the centre, pad = scale and extend the "
                            "edges, stretch = distort, none = keep the picture's own size."
                        ),
                    },
                ),
                "width": ("INT", {**size, "tooltip": "Animation width (multiple of 8); motion is fitted to it."}),
                "height": ("INT", {**size, "tooltip": "Animation height (multiple of 8); motion is fitted to it."}),
            }
        }

    def load(self, image: str, fit: str, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor, ContentRegion]:
        path = input_files.resolve(image, comfy.input_files(IMAGE_SUFFIXES))
        rgba = torch.from_numpy(read_image(path))
        rgb = fit_image(rgba[..., :3], width, height, fit)
        alpha = fit_image(rgba[..., 3:].expand(-1, -1, 3), width, height, fit)[..., 0]
        content = ContentRegion.of_fit(rgba.shape[0], rgba.shape[1], width, height, fit)
        device = comfy.intermediate_device()
        return rgb[None].float().to(device), (1 - alpha)[None].float().to(device), content

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        problem = input_files.check_choice(image, comfy.input_files(IMAGE_SUFFIXES))
        return True if problem is None else problem

    @classmethod
    def IS_CHANGED(cls, image: str, **_: object) -> str:
        return input_files.file_stamp(comfy.input_directory() / image)
