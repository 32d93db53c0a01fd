"""Rendered DensePose RGB -> part indices: exact on lossless frames, >= 99 % after an H.264 round trip."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bodies import BUILDS, clip, dance
from densepose_node.labels import detect_colormap, labels_from_rgb
from densepose_node.render import COLORMAPS, colorize
from magicanimate_core.media.video_io import read_video, write_video


@pytest.fixture(scope="module")
def dancing() -> np.ndarray:
    """16 frames of a synthetic body dancing, 512x512 part indices."""
    return clip(BUILDS["average"], dance(16, (200.0, 300.0), 300.0), (512, 512))


@pytest.mark.parametrize("colormap", COLORMAPS)
def test_exact_on_our_renderings(colormap):
    labels = np.random.default_rng(0).integers(0, 25, (3, 40, 50), dtype=np.uint8)
    rgb = colorize(labels, colormap)
    assert np.array_equal(labels_from_rgb(rgb, colormap), labels)
    assert np.array_equal(labels_from_rgb(rgb), labels)  # colormap detected
    assert detect_colormap(rgb) == colormap


@pytest.mark.parametrize("colormap", COLORMAPS)
def test_exact_after_a_lossless_file(colormap, dancing, tmp_path):
    path = write_video(tmp_path / "motion.mkv", [colorize(frame, colormap) for frame in dancing[:4]], 25)
    _, frames = read_video(path)
    assert np.array_equal(labels_from_rgb(np.stack(list(frames))), dancing[:4])


@pytest.mark.parametrize("colormap", COLORMAPS)
def test_at_least_99_percent_after_h264(colormap, dancing, tmp_path):
    path = write_video(tmp_path / "motion.mp4", [colorize(frame, colormap) for frame in dancing], 25)
    _, frames = read_video(path)
    decoded = np.stack(list(frames))
    assert not np.array_equal(decoded, colorize(dancing, colormap))  # the file really is lossy
    assert detect_colormap(decoded) == colormap
    right = labels_from_rgb(decoded) == dancing
    assert right.mean() >= 0.99
    # body pixels alone: fast limbs come back one palette step off in places (viridis neighbours differ by ~4 in luma)
    assert right[dancing > 0].mean() >= 0.8


def test_non_densepose_frames_are_refused():
    photo = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="do not look like DensePose.*Video to DensePose"):
        labels_from_rgb(photo)
    with pytest.raises(ValueError, match="expected uint8 RGB"):
        labels_from_rgb(photo.astype(np.float32))
