"""Motion frames fitted to the reference size and animations cropped back to the photo (nodes and CLI share it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from magicanimate_core.media.motion_fit import ContentRegion, background_colour, crop_to_content, fit_motion
from tests.nodes.fake_comfy import install

BACKGROUND = torch.tensor([68, 1, 84]) / 255


def densepose_clip(frames: int, height: int, width: int) -> torch.Tensor:
    colours = torch.tensor([[68, 1, 84], [253, 231, 37], [59, 82, 139]]) / 255
    labels = torch.zeros((frames, height, width), dtype=torch.long)
    labels[:, height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = 1
    labels[:, height // 2 :, width // 2 :] *= 2
    return colours[labels]


def test_equal_sizes_are_returned_untouched():
    motion = torch.rand(3, 16, 24, 3)
    for mode in ("stretch", "crop", "pad"):
        assert fit_motion(motion, 24, 16, mode) is motion


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_every_fitted_pixel_keeps_a_palette_colour(mode):
    motion = densepose_clip(2, 64, 48)
    fitted = fit_motion(motion, 32, 40, mode)
    assert fitted.shape == (2, 40, 32, 3)
    assert set(map(tuple, fitted.reshape(-1, 3).tolist())) <= set(map(tuple, motion.reshape(-1, 3).tolist()))


def test_pad_uses_the_frames_background_colour():
    motion = densepose_clip(1, 16, 32)
    assert torch.equal(background_colour(motion[0]), BACKGROUND)
    padded = fit_motion(motion, 32, 32, "pad")
    assert torch.equal(padded[0, :8], BACKGROUND.expand(8, 32, 3)) and torch.equal(padded[0, 8:24], motion[0])


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="stretch, crop, pad"):
        fit_motion(torch.rand(1, 8, 8, 3), 16, 16, "zoom")


def test_a_portrait_padded_to_a_square_is_cropped_back_to_its_aspect_ratio():
    region = ContentRegion.of_fit(1600, 900, 512, 512, "pad")  # 9:16 photo
    assert (region.top, region.height, region.frame_height, region.frame_width) == (0, 512, 512, 512)
    assert region.width == 288 and region.left == 112
    frames = torch.rand(2, 512, 512, 3)
    cropped = crop_to_content(frames, region)
    assert cropped.shape == (2, 512, 288, 3) and torch.equal(cropped, frames[:, :, 112:400])
    assert crop_to_content(torch.rand(1, 256, 256, 3), region).shape == (1, 256, 144, 3)  # scaled region
    whole = ContentRegion.of_fit(1600, 900, 512, 512, "crop")
    assert crop_to_content(frames, whole).shape == frames.shape


def test_load_reference_reports_its_padding_and_the_crop_node_removes_it(pack, monkeypatch, tmp_path):
    comfy = install(monkeypatch, tmp_path)
    picture = np.random.default_rng(0).integers(0, 256, (96, 54, 3), dtype=np.uint8)  # 9:16
    Image.fromarray(picture).save(comfy.dir("input") / "portrait.png")
    nodes = pack.NODE_CLASS_MAPPINGS
    image, _, content = nodes["MagicAnimate_LoadReference"]().load("portrait.png", "pad", 64, 64)
    assert image.shape == (1, 64, 64, 3)
    (frames,) = nodes["MagicAnimate_CropToReference"]().crop(torch.rand(4, 64, 64, 3), content)
    assert frames.shape == (4, 64, 36, 3)  # 9:16 again
