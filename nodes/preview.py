"""Previews: the sampler's denoised estimate through ComfyUI's latent previewer, and saved videos that play."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..magicanimate_core.media.video_io import write_video
from . import comfy_adapter as comfy

if TYPE_CHECKING:
    from ..magicanimate_core.pipeline import StepInfo

STRIP_FRAMES = 4  # frames shown side by side


def preview_strip(latents: torch.Tensor, frames: int = STRIP_FRAMES) -> torch.Tensor:
    """Up to `frames` evenly spaced frames of `[1, 4, F, h, w]` latents side by side: `[1, 4, h, frames * w]`."""
    count = latents.shape[2]
    picks = torch.linspace(0, count - 1, min(frames, count)).round().long().unique()
    return torch.cat(list(latents[0, :, picks].detach().float().unbind(1)), dim=-1)[None]


def step_preview(previewer: Any, info: StepInfo) -> tuple | None:
    """ComfyUI's preview tuple for a finished step: the scheduler's denoised estimate when it reports one."""
    latents = getattr(info, "denoised", None)
    if latents is None:
        latents = info.latents
    if previewer is None or latents is None:
        return None
    return previewer.decode_latent_to_preview_image("JPEG", preview_strip(latents))


# --- what Save Video shows on the node --------------------------------------------------------------------

BROWSER_UNPLAYABLE = frozenset({"ffv1-mkv"})  # formats no browser decodes: shown through an H.264 copy
PREVIEW_FOLDER = "magicanimate_previews"
PREVIEW_QUALITY = 40


def saved_video_ui(path: Path, subfolder: str, format: str, frames: np.ndarray, fps: float) -> dict:
    """The `ui` dict that makes the ComfyUI frontend (1.27) play a saved video on the node and in the queue.

    The frontend plays an animated output in a <video> unless its name says WebP/PNG. A <video> cannot
    show a GIF, so a GIF is announced as a plain image (the browser animates it); a format no browser
    decodes (FFV1 MKV) is previewed by a small H.264 copy in ComfyUI's temp folder, named after the saved
    file, so a node switched to another format always shows its new file.
    """
    if format in BROWSER_UNPLAYABLE:
        copy = comfy.temp_directory() / PREVIEW_FOLDER / f"{path.stem}.mp4"
        write_video(copy, frames, fps, format="h264-mp4", quality=PREVIEW_QUALITY, overwrite=True)
        shown = {"filename": copy.name, "subfolder": PREVIEW_FOLDER, "type": "temp"}
    else:
        shown = {"filename": path.name, "subfolder": subfolder, "type": "output"}
    return {"images": [shown], "animated": (format != "gif",)}
