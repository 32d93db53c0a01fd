"""Initial noise: drawn for one 16-frame clip and tiled along the frames, as the reference does."""

from __future__ import annotations

import torch

NOISE_FRAMES = 16
"""The reference draws noise for 16 frames (`clip_length`) and repeats it: frame k and k+16 share noise."""


def draw_noise(seed: int, height: int, width: int, frames: int = NOISE_FRAMES) -> torch.Tensor:
    """`[frames, 4, height/8, width/8]` standard normal noise from a CPU generator seeded with `seed`."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn((1, 4, frames, height // 8, width // 8), generator=generator)[0].permute(1, 0, 2, 3)


def tile_noise(noise: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Noise `[K, 4, h, w]` -> latents `[1, 4, num_frames, h, w]` with frame i taken from `i mod K`."""
    if noise.ndim != 4 or noise.shape[1] != 4:
        raise ValueError(f"initial noise must have shape [K, 4, H/8, W/8]; got {list(noise.shape)}")
    index = torch.arange(num_frames) % noise.shape[0]
    return noise[index].permute(1, 0, 2, 3).unsqueeze(0).contiguous()
