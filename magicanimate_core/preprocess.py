"""Padding clips to whole noise periods (fitting pictures to the animation size is `media.fit`)."""

from __future__ import annotations

import math


def padded_length(num_frames: int, multiple: int = 16) -> int:
    """Frames after edge-padding to a whole number of noise periods."""
    return multiple * math.ceil(num_frames / multiple)
