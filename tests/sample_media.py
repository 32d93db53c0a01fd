"""Synthetic inputs drawn from fixed seeds: a reference picture, a DensePose-looking clip, a walking video.

`write_sample_inputs(folder)` lays them out, with the generated tiny checkpoints, like the inputs of the
golden folder (`case_A/reference.png`, `case_B/control.npy`, `densepose/video/synthetic_walk_256.mp4`,
`densepose/weights/tiny_densepose.pkl`, `tiny_checkpoints/pretrained_models/`), so helpers that take a
golden folder for its inputs (such as the end-to-end `install`) accept the generated one unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from magicanimate_core.media.video_io import write_video

DENSEPOSE_BACKGROUND = (68, 1, 84)  # viridis(0): what the DensePose renderer paints behind people
PART_COLOURS = np.array([(59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.uint8)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32) / size


def reference_image(size: int = 64, seed: int = 7) -> np.ndarray:
    """uint8 RGB [size, size, 3]: a figure (head, body, legs) on a gradient background, with mild noise."""
    y, x = _grid(size)
    picture = np.stack([0.3 + 0.5 * x, 0.4 + 0.3 * y, 0.8 - 0.4 * x * y], axis=-1)
    head = (x - 0.5) ** 2 + (y - 0.2) ** 2 < 0.01
    body = (abs(x - 0.5) < 0.12) & (y > 0.3) & (y < 0.65)
    legs = ((abs(x - 0.43) < 0.04) | (abs(x - 0.57) < 0.04)) & (y >= 0.65) & (y < 0.95)
    picture[head] = (0.9, 0.75, 0.6)
    picture[body] = (0.8, 0.2, 0.2)
    picture[legs] = (0.2, 0.2, 0.6)
    noise = np.random.default_rng(seed).normal(0, 0.02, picture.shape)
    return (np.clip(picture + noise, 0, 1) * 255).round().astype(np.uint8)


def _figure_masks(size: int, t: float) -> list[np.ndarray]:
    """Head, body and two swinging legs of a figure walking left to right, at phase `t` in [0, 1)."""
    y, x = _grid(size)
    centre = 0.3 + 0.4 * t
    swing = 0.08 * np.sin(2 * np.pi * 2 * t)
    head = (x - centre) ** 2 + (y - 0.2) ** 2 < 0.008
    body = (abs(x - centre) < 0.1) & (y > 0.28) & (y < 0.62)
    left = (abs(x - centre + 0.05 - swing * (y - 0.62) / 0.3) < 0.035) & (y >= 0.62) & (y < 0.92)
    right = (abs(x - centre - 0.05 + swing * (y - 0.62) / 0.3) < 0.035) & (y >= 0.62) & (y < 0.92)
    return [head, body, left, right]


def densepose_clip(frames: int = 20, size: int = 64) -> np.ndarray:
    """uint8 RGB [frames, size, size, 3]: viridis-coloured parts of a walking figure on DensePose's background."""
    clip = np.empty((frames, size, size, 3), np.uint8)
    for index in range(frames):
        clip[index] = DENSEPOSE_BACKGROUND
        for colour, mask in zip(PART_COLOURS, _figure_masks(size, index / frames), strict=True):
            clip[index][mask] = colour
    return clip


def walking_video(frames: int = 12, size: int = 128, seed: int = 11) -> np.ndarray:
    """uint8 RGB [frames, size, size, 3]: an ordinary-looking clip (textured floor, clothed walker)."""
    y, x = _grid(size)
    texture = np.random.default_rng(seed).uniform(-0.05, 0.05, (size, size, 1))
    clothes = np.array([(0.9, 0.75, 0.6), (0.7, 0.3, 0.2), (0.2, 0.25, 0.5), (0.2, 0.25, 0.5)])
    clip = np.empty((frames, size, size, 3), np.uint8)
    for index in range(frames):
        picture = np.stack([0.55 + 0.2 * y, 0.6 + 0.1 * x, 0.5 + 0.0 * x], axis=-1) + texture
        for colour, mask in zip(clothes, _figure_masks(size, index / frames), strict=True):
            picture[mask] = colour
        clip[index] = (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)
    return clip


def write_sample_inputs(folder: str | Path, pretrained_models: Path, densepose_pkl: Path) -> Path:
    """Write the synthetic inputs, and links to the generated weights, in the golden folder's input layout."""
    folder = Path(folder)
    for sub in ("case_A", "case_B", "densepose/video", "densepose/weights", "tiny_checkpoints"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(reference_image()).save(folder / "case_A" / "reference.png")
    np.save(folder / "case_B" / "control.npy", densepose_clip())
    write_video(folder / "densepose" / "video" / "synthetic_walk_256.mp4", walking_video(), 25, format="h264-mp4")
    (folder / "densepose" / "weights" / "tiny_densepose.pkl").symlink_to(densepose_pkl)
    (folder / "tiny_checkpoints" / "pretrained_models").symlink_to(pretrained_models, target_is_directory=True)
    return folder
