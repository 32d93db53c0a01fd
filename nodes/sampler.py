"""MagicAnimate_Sampler: animate a reference picture along a DensePose motion sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..magicanimate_core.media.frames import check_image_range
from ..magicanimate_core.validation import check_finite
from . import comfy_adapter as comfy
from .preview import latent_preview

if TYPE_CHECKING:
    from ..magicanimate_core.pipeline import MagicAnimatePipeline, StepInfo

MAX_CONTEXT_FRAMES = 24  # the motion module's positional encoding holds 24 frames


def check_inputs(reference: torch.Tensor, motion: torch.Tensor) -> None:
    """ValueError naming the node-level fix; the pipeline checks everything else (sizes, noise, windows)."""
    if reference.shape[0] != 1:
        raise ValueError(
            f"reference holds {reference.shape[0]} images; MagicAnimate animates exactly one "
            "(load a single picture, e.g. with 'Load Reference (MagicAnimate)')"
        )
    (ref_h, ref_w), (height, width) = reference.shape[1:3], motion.shape[1:3]
    if motion.shape[0] and (ref_h, ref_w) != (height, width):
        raise ValueError(
            f"reference is {ref_w}x{ref_h} but the motion frames are {width}x{height}; set width={width}, "
            f"height={height} in 'Load Reference (MagicAnimate)' (fit crop or pad)"
        )


class MagicAnimate_Sampler:
    DESCRIPTION = (
        "Animates the reference picture so that the person follows the DensePose motion frames. Long clips are "
        "denoised in overlapping windows of context_frames. Reference and motion must have the same size, a "
        "multiple of 8 (512x512 suits the released model)."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The animation, one frame per motion frame [F, H, W, 3].",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MAGICANIMATE_MODEL", {"tooltip": "From 'MagicAnimate Model Loader'."}),
                "reference": ("IMAGE", {"tooltip": "The person to animate: one image, same size as the motion."}),
                "motion": ("IMAGE", {"tooltip": "DensePose frames [F, H, W, 3] driving the animation."}),
                "seed": (
                    "INT",
                    {
                        "default": 1,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "control_after_generate": True,
                        "tooltip": "Seed of the initial noise (unused when a noise latent is connected).",
                    },
                ),
                "steps": (
                    "INT",
                    {"default": 25, "min": 1, "max": 200, "tooltip": "DDIM denoising steps (25 as released)."},
                ),
                "guidance_scale": (
                    "FLOAT",
                    {
                        "default": 7.5,
                        "min": 0.0,
                        "max": 30.0,
                        "step": 0.1,
                        "round": 0.01,
                        "tooltip": "Classifier-free guidance strength (7.5 as released).",
                    },
                ),
                "context_frames": (
                    "INT",
                    {
                        "default": 16,
                        "min": 1,
                        "max": MAX_CONTEXT_FRAMES,
                        "tooltip": ("Frames denoised together in one window; trained at 16, at most 24."),
                    },
                ),
                "context_overlap": (
                    "INT",
                    {
                        "default": 4,
                        "min": 0,
                        "max": MAX_CONTEXT_FRAMES - 1,
                        "tooltip": ("Frames shared by neighbouring windows; must be smaller than context_frames."),
                    },
                ),
            },
            "optional": {
                "noise": (
                    "LATENT",
                    {"tooltip": ("Initial noise [K, 4, H/8, W/8] instead of the seed's, repeated every K frames.")},
                ),
            },
        }

    def sample(
        self,
        model: MagicAnimatePipeline,
        reference: torch.Tensor,
        motion: torch.Tensor,
        seed: int,
        steps: int,
        guidance_scale: float,
        context_frames: int,
        context_overlap: int,
        noise: dict | None = None,
    ) -> tuple[torch.Tensor]:
        check_image_range(reference, "reference (from the node connected to the Sampler's 'reference' input)")
        check_image_range(motion, "motion (from the node connected to the Sampler's 'motion' input)")
        check_finite("guidance_scale", guidance_scale, "7.5 as released")
        check_inputs(reference, motion)
        progress, size = comfy.progress_bar(steps), comfy.preview_size()

        def on_call(info: StepInfo) -> None:
            """After every UNet call: honour Cancel, advance the bar, preview each finished step."""
            comfy.throw_if_interrupted()
            preview = None
            if size is not None and info.latents is not None:
                preview = ("JPEG", latent_preview(info.latents, size), size)
            done = info.step * info.num_calls + info.call
            progress.update_absolute(done, info.num_steps * info.num_calls, preview)

        source = {"seed": seed} if noise is None else {"noise": noise["samples"].float().cpu()}
        model.to(comfy.torch_device())
        try:
            frames = model(
                reference[0].float(),
                motion.float(),
                **source,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                context_frames=context_frames,
                context_overlap=context_overlap,
                callback=on_call,
            )
        finally:
            model.to(comfy.offload_device())
            comfy.soft_empty_cache()
        return (frames.to(comfy.intermediate_device()),)
