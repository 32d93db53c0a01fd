"""MagicAnimate_Sampler: animate a reference picture along a DensePose motion sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..magicanimate_core.local_devices import animate_on_devices, pipelines_for, release_copies
from ..magicanimate_core.media.frames import check_image_range
from ..magicanimate_core.media.motion_fit import MOTION_FITS, fit_motion
from ..magicanimate_core.memory import estimate_device_bytes, kept_feature_rows
from ..magicanimate_core.validation import check_finite
from . import comfy_adapter as comfy
from .preview import step_preview
from .sampler_options import OPTIONS_TYPE, SamplerSettings
from .upstream import source_of

if TYPE_CHECKING:
    from ..magicanimate_core.options import Speedups
    from ..magicanimate_core.pipeline import MagicAnimatePipeline, StepInfo

MAX_CONTEXT_FRAMES = 24  # the motion module's positional encoding holds 24 frames


def check_inputs(reference: torch.Tensor) -> None:
    """ValueError naming the node-level fix; the pipeline checks everything else (sizes, noise, windows)."""
    if reference.shape[0] != 1:
        raise ValueError(
            f"reference holds {reference.shape[0]} images; MagicAnimate animates exactly one "
            "(load a single picture, e.g. with 'Load Reference (MagicAnimate)')"
        )


def preflight(
    model: MagicAnimatePipeline,
    height: int,
    width: int,
    context_frames: int,
    speedups: Speedups,
    kept_rows: int = 0,
) -> int:
    """Check device memory before any weight moves (letting ComfyUI unload other models first).

    `kept_rows`: see `kept_feature_rows` (deep feature reuse; counted in the total). Returns the bytes one
    UNet or VAE call needs beside the weights; MemoryError naming the node inputs that lower it.
    """
    device = comfy.torch_device()
    activations = estimate_device_bytes(0, height, width, context_frames, model.dtype, speedups)
    needed = model.estimate_device_bytes(height, width, context_frames, speedups, kept_rows)
    free = comfy.free_memory(needed, device, keep=model)
    if free is not None and needed > free:
        raise MemoryError(
            f"this run needs about {needed / 2**30:.1f} GiB on {device} but {free / 2**30:.1f} GiB are free. "
            "Lower it with 'MagicAnimate Sampler Options' connected to the sampler's options input: "
            "sequential_cfg=true, offload=true, decode_batch_size=1; or with the sampler's context_frames "
            "(e.g. 12), the loader's dtype fp16, or a smaller Load Reference width/height (e.g. 384)"
            + ("; deep_feature_reuse=0 keeps no features between steps." if kept_rows else ".")
        )
    return activations


class MagicAnimate_Sampler:
    DESCRIPTION = (
        "Animates the reference picture so that the person follows the DensePose motion frames. Long clips are "
        "denoised in overlapping windows of context_frames. The reference sets the size, a multiple of 8 "
        "(512x512 suits the released model); motion of another size is fitted to it (motion_fit)."
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
                "reference": ("IMAGE", {"tooltip": "The person to animate: one image; its size is the animation's."}),
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
                "motion_fit": (
                    list(MOTION_FITS),
                    {
                        "default": "stretch",
                        "tooltip": (
                            "When the motion is not the reference's size: stretch it (as the original), crop its "
                            "centre, or pad it with its background. Nearest neighbour keeps DensePose colours."
                        ),
                    },
                ),
                "options": (
                    OPTIONS_TYPE,
                    {"tooltip": "From 'MagicAnimate Sampler Options': scheduler, windows, guidance, memory levers."},
                ),
            },
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
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
        motion_fit: str = "stretch",
        options: SamplerSettings | None = None,
        prompt: dict | None = None,
        unique_id: str | None = None,
    ) -> tuple[torch.Tensor]:
        check_image_range(reference, source_of("reference", "the Sampler", prompt, unique_id))
        check_image_range(motion, source_of("motion", "the Sampler", prompt, unique_id))
        check_finite("guidance_scale", guidance_scale, "7.5 as released")
        check_inputs(reference)
        height, width = reference.shape[1:3]
        motion = fit_motion(motion, width, height, motion_fit)
        settings = options or SamplerSettings()
        speedups = settings.speedups(comfy.torch_device())
        kept_rows = kept_feature_rows(motion.shape[0], context_frames, context_overlap, settings.sampling)
        activations = preflight(model, height, width, context_frames, speedups, kept_rows)
        progress, previewer = comfy.progress_bar(steps), comfy.latent_previewer()

        def on_call(info: StepInfo) -> None:
            """After every UNet call: honour Cancel, advance the bar, preview each finished step."""
            comfy.throw_if_interrupted()
            preview = step_preview(previewer, info) if info.latents is not None else None
            done = info.step * info.num_calls + info.call
            progress.update_absolute(done, info.num_steps * info.num_calls, preview)

        source = {"seed": seed} if noise is None else {"noise": noise["samples"].float().cpu()}
        devices = list(settings.devices) or [comfy.torch_device()]
        if speedups.offload:  # the pipeline moves each network in and out itself, from the offload device
            comfy.release_model(model, keep_loaded=False)
            model.execution_device = comfy.torch_device()
        elif comfy.torch_device() in devices:
            comfy.load_model(model, activations)
        try:
            frames = animate_on_devices(
                pipelines_for(model, devices) if settings.devices else [model],
                reference[0].float(),
                motion.float(),
                **source,
                num_inference_steps=steps,
                guidance_scale=guidance_scale,
                context_frames=context_frames,
                context_overlap=context_overlap,
                callback=on_call,
                options=settings.sampling,
                speedups=speedups,
            )
        finally:
            comfy.release_model(model, settings.keep_model_loaded)
            if not settings.keep_model_loaded:
                release_copies(model)
        return (frames.to(comfy.intermediate_device()),)
