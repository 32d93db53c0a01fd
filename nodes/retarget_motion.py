"""MagicAnimate_RetargetMotion: move the DensePose motion's body onto the reference person's build."""

from __future__ import annotations

import torch

from ..densepose_node.labels import labels_from_rgb
from ..densepose_node.retarget import reference_labels, retarget_frames
from ..magicanimate_core.media.frames import check_image_range, from_uint8, to_uint8
from . import comfy_adapter as comfy
from .video_to_densepose import WEIGHTS_FOLDER, cached_estimator, weights_choices

RETARGET_MODES = ("parts", "global", "off")  # densepose_node.retarget.MODES, the default first


class MagicAnimate_RetargetMotion:
    DESCRIPTION = (
        "Fits the body in the DensePose motion to the person in the reference photo, so MagicAnimate does not "
        "squeeze or stretch them into someone else's silhouette. global: one scale (body heights) and placement "
        "(feet on the photo's ground line); parts: also each limb, the torso and the head resized to the "
        "reference's proportions. The reference's DensePose is estimated with the weights in models/densepose "
        "unless reference_densepose is connected."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "retarget"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The motion's DensePose frames redrawn on the reference's body, same colormap and size.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "motion": ("IMAGE", {"tooltip": "DensePose frames [F, H, W, 3] (viridis or parula-black)."}),
                "reference": (
                    "IMAGE",
                    {"tooltip": "The photo to animate, at the motion's size (the same image the sampler gets)."},
                ),
                "mode": (
                    list(RETARGET_MODES),
                    {
                        "default": "parts",
                        "tooltip": (
                            "parts = body height and every limb's length and width; global = body height and "
                            "placement only; off = pass the motion through."
                        ),
                    },
                ),
                "weights": (
                    weights_choices(),
                    {"tooltip": "DensePose R-CNN weights in models/densepose, to find the reference's body parts."},
                ),
            },
            "optional": {
                "reference_densepose": (
                    "IMAGE",
                    {"tooltip": "A DensePose rendering of the reference (skips estimating it from the photo)."},
                ),
                "align_frame": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 100000,
                        "tooltip": "Motion frame whose body is measured and placed (pick one showing the whole body).",
                    },
                ),
            },
        }

    def retarget(
        self,
        motion: torch.Tensor,
        reference: torch.Tensor,
        mode: str,
        weights: str,
        reference_densepose: torch.Tensor | None = None,
        align_frame: int = 0,
    ) -> tuple[torch.Tensor]:
        if mode == "off":
            return (motion,)
        if motion.shape[0] == 0:
            raise ValueError("motion holds no frames: connect the DensePose frames of a video")
        check_image_range(motion, "motion (Retarget Motion's 'motion' input)")
        picture = reference_densepose if reference_densepose is not None else reference
        name = "reference_densepose" if reference_densepose is not None else "reference"
        check_image_range(picture, f"{name} (Retarget Motion's '{name}' input)")
        if picture.shape[0] != 1 or tuple(picture.shape[1:3]) != tuple(motion.shape[1:3]):
            raise ValueError(
                f"{name} is {picture.shape[0]} image(s) of {picture.shape[2]}x{picture.shape[1]} but the motion "
                f"frames are {motion.shape[2]}x{motion.shape[1]}; give one picture at the motion's size (set width "
                "and height in 'Load Reference (MagicAnimate)', or the output size of 'Video to DensePose')"
            )
        if reference_densepose is not None:
            target = labels_from_rgb(to_uint8(reference_densepose)[0])
        else:
            estimator = cached_estimator("auto", comfy.model_file(WEIGHTS_FOLDER, weights), comfy.torch_device())
            target = reference_labels(estimator, to_uint8(reference)[0])
        progress = comfy.progress_bar(2 * motion.shape[0])

        def on_step(done: int) -> None:
            comfy.throw_if_interrupted()
            progress.update_absolute(done)

        comfy.throw_if_interrupted()
        moved = retarget_frames(target, to_uint8(motion), mode, align_frame=align_frame, progress=on_step)
        return (from_uint8(moved).to(comfy.intermediate_device()),)
