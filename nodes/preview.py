"""Live previews of the denoised estimate: a strip of frames handed to ComfyUI's own latent previewer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

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
