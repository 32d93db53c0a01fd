"""Conversions between ComfyUI IMAGE batches ([N, H, W, 3] float in [0, 1]) and uint8 frames."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from . import comfy_adapter as comfy


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, H, W, C] float in [0, 1] -> [N, H, W, 3] uint8 (rounded; extra channels dropped)."""
    return (images[..., :3].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def from_uint8(frames: Iterable[np.ndarray]) -> torch.Tensor:
    """uint8 RGB frames -> IMAGE batch on ComfyUI's intermediate device (empty input -> [0, 0, 0, 3])."""
    stacked = [torch.from_numpy(np.ascontiguousarray(frame)) for frame in frames]
    if not stacked:
        return torch.zeros((0, 0, 0, 3), dtype=torch.float32)
    batch = torch.stack(stacked).to(torch.float32).div_(255)
    return batch.to(comfy.intermediate_device())
