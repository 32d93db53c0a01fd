"""Cheap live previews: SD1.5 latents -> RGB by a fixed linear map (no VAE decode)."""

from __future__ import annotations

import torch
from PIL import Image

# SD1.5 latent channel -> RGB contribution (the factors ComfyUI uses for its "latent2rgb" previews)
SD15_LATENT_RGB = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)


def latent_preview(latents: torch.Tensor, max_size: int) -> Image.Image:
    """First frame of latents [1, 4, F, h, w] as an RGB picture at pixel scale (8x), at most `max_size` wide."""
    frame = latents[0, :, 0].detach().float().cpu()  # [4, h, w]
    rgb = torch.einsum("chw,cr->hwr", frame, SD15_LATENT_RGB)
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels)
    scale = max(1, min(8, max_size // max(image.size)))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.BILINEAR)
