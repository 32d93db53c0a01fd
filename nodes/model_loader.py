"""MagicAnimate_ModelLoader: a `pretrained_models/`-style folder under models/magicanimate -> pipeline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..magicanimate_core.devices import DTYPE_CHOICES, resolve_dtype
from . import comfy_adapter as comfy

if TYPE_CHECKING:  # the pipeline (diffusers) is imported when a model is loaded, not when ComfyUI starts
    from ..magicanimate_core.pipeline import MagicAnimatePipeline

LOG = logging.getLogger("magicanimate")
MODEL_FOLDER = "magicanimate"
FROM_MODEL_FOLDER = "(from model folder)"


# MAGICANIMATE_MODEL sockets carry the MagicAnimatePipeline itself, kept on the offload device between runs
_cache: dict[tuple, MagicAnimatePipeline] = {}


def model_choices() -> list[str]:
    """Subfolders of models/magicanimate that hold a `MagicAnimate/` folder, like the original download."""
    names = {
        p.name
        for root in comfy.model_folders(MODEL_FOLDER)
        if root.is_dir()
        for p in root.iterdir()
        if (p / "MagicAnimate").is_dir()
    }
    return sorted(names)


def model_dir(name: str) -> Path:
    for root in comfy.model_folders(MODEL_FOLDER):
        if (root / name / "MagicAnimate").is_dir():
            return root / name
    raise FileNotFoundError(f"No model folder '{name}' with a MagicAnimate/ subfolder in models/{MODEL_FOLDER}")


def _fingerprint(path: Path | None) -> tuple:
    """Identity of a file or folder for the cache: path and the newest modification time inside."""
    if path is None:
        return ()
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return str(path), max((p.stat().st_mtime_ns for p in files), default=0)


class MagicAnimate_ModelLoader:
    DESCRIPTION = (
        "Loads MagicAnimate from a folder in models/magicanimate laid out like the original pretrained_models/ "
        "(MagicAnimate/, stable-diffusion-v1-5/, sd-vae-ft-mse/). The SD1.5 weights and the VAE can come from "
        "your own models/checkpoints and models/vae files instead. Loaded models are kept for the next run."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "load"
    RETURN_TYPES = ("MAGICANIMATE_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The MagicAnimate pipeline, for the sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    model_choices(),
                    {
                        "tooltip": (
                            f"A folder in models/{MODEL_FOLDER} holding MagicAnimate/ (appearance_encoder, "
                            "densepose_controlnet, temporal_attention), stable-diffusion-v1-5/ and sd-vae-ft-mse/."
                        )
                    },
                ),
                "dtype": (
                    list(DTYPE_CHOICES),
                    {"default": "auto", "tooltip": ("Weight precision; auto = fp16 on a CUDA GPU, fp32 otherwise.")},
                ),
            },
            "optional": {
                "sd15_checkpoint": (
                    [FROM_MODEL_FOLDER, *comfy.model_files("checkpoints")],
                    {
                        "default": FROM_MODEL_FOLDER,
                        "tooltip": "Take the SD1.5 UNet and text encoder from this models/checkpoints file.",
                    },
                ),
                "vae": (
                    [FROM_MODEL_FOLDER, *comfy.model_files("vae")],
                    {"default": FROM_MODEL_FOLDER, "tooltip": "Take the VAE from this models/vae file."},
                ),
            },
        }

    def load(
        self, model: str, dtype: str, sd15_checkpoint: str = FROM_MODEL_FOLDER, vae: str = FROM_MODEL_FOLDER
    ) -> tuple[MagicAnimatePipeline]:
        from ..magicanimate_core.pipeline import MagicAnimatePipeline

        folder = model_dir(model)
        checkpoint = None if sd15_checkpoint == FROM_MODEL_FOLDER else comfy.model_file("checkpoints", sd15_checkpoint)
        vae_path = None if vae == FROM_MODEL_FOLDER else comfy.model_file("vae", vae)
        torch_dtype = resolve_dtype(dtype, comfy.torch_device())
        key = (_fingerprint(folder), _fingerprint(checkpoint), _fingerprint(vae_path), torch_dtype)
        if key not in _cache:
            _cache.clear()  # one MagicAnimate at a time: the previous one's memory is released first
            LOG.info("loading MagicAnimate from %s (%s)", folder, torch_dtype)
            _cache[key] = MagicAnimatePipeline.from_pretrained(
                folder, device=comfy.offload_device(), dtype=torch_dtype, sd15_checkpoint=checkpoint, vae_path=vae_path
            )
        return (_cache[key],)
