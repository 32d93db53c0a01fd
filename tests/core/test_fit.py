"""The one fitting rule: geometry of crop / pad, exact palette colours with nearest, photos bicubic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magicanimate_core.media.fit import fit_box, fit_image, fit_labels, square_label_fit


def test_label_square_fit_crops_and_pads_with_background():
    labels = np.zeros((10, 20), np.uint8)
    labels[:, :5] = 1
    labels[:, 5:15] = 2
    assert square_label_fit("source", 512) is None
    cropped = square_label_fit("crop", 10)(labels)
    assert cropped.shape == (10, 10) and np.all(cropped == 2)
    padded = square_label_fit("pad", 40)(labels)
    assert padded.shape == (40, 40)
    assert np.all(padded[:10] == 0) and np.all(padded[30:] == 0)
    assert set(np.unique(padded[10:30])) == {0, 1, 2}
    with pytest.raises(ValueError, match="unknown output fit 'stretch'"):
        square_label_fit("stretch", 40)


def test_nearest_keeps_every_pixel_a_source_colour_on_frame_batches():
    palette = np.array([[68, 1, 84], [33, 145, 140], [253, 231, 37]], np.uint8)
    frames = palette[np.random.default_rng(0).integers(0, 3, (4, 37, 53))]
    for mode in ("crop", "pad", "stretch"):
        fitted = fit_image(frames, 64, 48, mode, resample="nearest", fill=68)
        assert fitted.shape == (4, 48, 64, 3)
        colours = {tuple(c) for c in fitted.reshape(-1, 3)}
        assert colours <= {tuple(c) for c in palette} | {(68, 68, 68)}
    stretched = fit_image(torch.from_numpy(frames), 106, 74, "stretch", resample="nearest")
    assert torch.equal(stretched[:, ::2, ::2], torch.from_numpy(frames))  # exact 2x upscale repeats pixels


def test_fit_box_geometry_and_content_region():
    box = fit_box(90, 160, 512, 512, "pad")  # 16:9 photo on a square: 35 + 35 rows of padding
    assert (box.pad_top, box.pad_bottom, box.pad_left, box.pad_right) == (35, 35, 0, 0)
    assert box.padded_size == (160, 160)
    assert box.content_region(512, 512) == (112, 0, 288, 512)
    crop = fit_box(90, 160, 64, 64, "crop")
    assert (crop.top, crop.left, crop.height, crop.width) == (0, 35, 90, 90)


def test_photo_fit_pads_edges_and_rejects_bad_modes():
    image = torch.zeros(8, 16, 3)
    image[:, :, 0] = 1.0
    padded = fit_image(image, 16, 16, "pad")
    assert padded.shape == (16, 16, 3) and torch.allclose(padded[..., 0], torch.ones(16, 16))  # edges repeated
    assert fit_image(image, 64, 64, "none") is image
    with pytest.raises(ValueError, match="unknown fit mode 'zoom'"):
        fit_image(image, 16, 16, "zoom")
    with pytest.raises(ValueError, match="too small"):
        fit_image(image, 4, 16, "crop")
    assert fit_labels(np.ones((3, 5), np.uint8), 10, 10, "pad")[0].tolist() == [0] * 10
