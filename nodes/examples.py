"""Bundled example motion sequences, generated procedurally (no video files ship with the pack).

`synthetic walk` is a DensePose-style clip: a stick figure whose body parts carry the DensePose part
labels' viridis colours walks on the spot on the DensePose background (68, 1, 84), swinging arms and legs.
It loops seamlessly every 24 frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..densepose_node.render import palette

# DensePose part labels: torso, head, then (right, left) upper leg, lower leg, upper arm, lower arm
TORSO, HEAD, UPPER_LEG, LOWER_LEG, UPPER_ARM, LOWER_ARM = 2, 23, (7, 8), (11, 12), (16, 15), (20, 19)


@dataclass(frozen=True)
class Example:
    """A generated clip, listed as `name`, cached as `slug`: `frames` uint8 RGB frames of `size` x `size` at `fps`."""

    name: str
    slug: str
    frame_count: int
    fps: float
    size: int

    def frames(self) -> Iterator[np.ndarray]:
        for index in range(self.frame_count):
            yield walk_frame(2 * math.pi * index / 24, self.size)


EXAMPLES = {e.name: e for e in [Example("example: synthetic walk (DensePose)", "synthetic_walk", 48, 25.0, 512)]}


def _limb(start: tuple[float, float], angle: float, length: float) -> tuple[float, float]:
    return start[0] + length * math.sin(angle), start[1] + length * math.cos(angle)


def _segments(phase: float) -> list[tuple[tuple[float, float], tuple[float, float], float, int]]:
    """Body segments in unit coordinates (x right, y down): (start, end, radius, DensePose part label)."""
    swing, bob = 0.45 * math.sin(phase), 0.01 * abs(math.sin(phase))
    hip, neck = (0.5, 0.56 + bob), (0.5, 0.30 + bob)
    segments = [(neck, hip, 0.075, TORSO), (neck, (0.5, 0.20 + bob), 0.07, HEAD)]
    for side, sign in ((0, 1.0), (1, -1.0)):
        knee = _limb(hip, sign * swing, 0.17)
        elbow = _limb(neck, -sign * swing, 0.14)
        segments += [
            (hip, knee, 0.045, UPPER_LEG[side]),
            (knee, _limb(knee, sign * swing - 0.35 * (1 + sign * math.sin(phase)), 0.17), 0.04, LOWER_LEG[side]),
            (neck, elbow, 0.035, UPPER_ARM[side]),
            (elbow, _limb(elbow, -sign * swing * 0.6 + 0.3, 0.13), 0.03, LOWER_ARM[side]),
        ]
    return segments


def walk_frame(phase: float, size: int) -> np.ndarray:
    """One frame of the walk at `phase` (radians): uint8 RGB [size, size, 3]."""
    labels = np.zeros((size, size), np.uint8)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for (x0, y0), (x1, y1), radius, label in _segments(phase):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        labels[(xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= radius**2] = label
    return palette("viridis")[labels]
