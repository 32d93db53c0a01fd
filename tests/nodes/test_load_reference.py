"""MagicAnimate_LoadReference without ComfyUI: fitting, EXIF, alpha, palettes and input-folder safety."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from tests.nodes.fake_comfy import install


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    return install(monkeypatch, tmp_path)


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_LoadReference"]


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], -1))


@pytest.mark.parametrize("fit", ["crop", "pad", "stretch"])
def test_fits_to_the_requested_size(comfy, node, fit):
    gradient(96, 48).save(comfy.dir("input") / "wide.png")
    image, mask, _ = node().load("wide.png", fit, 64, 72)
    assert image.shape == (1, 72, 64, 3) and image.dtype == torch.float32
    assert mask.shape == (1, 72, 64) and float(mask.abs().max()) == 0.0
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def test_fit_modes_differ_as_described(comfy, node):
    gradient(96, 48).save(comfy.dir("input") / "wide.png")
    crop, _, _ = node().load("wide.png", "crop", 48, 48)
    pad, _, _ = node().load("wide.png", "pad", 48, 48)
    # crop keeps the centre: its left column is mid-gradient; pad keeps the whole width: left column ~0
    assert float(crop[0, :, 0, 0].mean()) > 0.2
    assert float(pad[0, :, 0, 0].mean()) < 0.05
    # pad repeats the edge rows: the top rows of the padded square all equal the source's first row
    assert torch.allclose(pad[0, 0], pad[0, 5], atol=2 / 255)


def test_none_keeps_the_picture_size(comfy, node):
    gradient(40, 24).save(comfy.dir("input") / "small.png")
    image, mask, _ = node().load("small.png", "none", 512, 512)
    assert image.shape == (1, 24, 40, 3) and mask.shape == (1, 24, 40)
    expected = np.asarray(gradient(40, 24), np.float32) / 255
    assert np.array_equal(image[0].numpy(), expected)


def test_exif_orientation_is_applied(comfy, node):
    picture = gradient(32, 16)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    picture.save(comfy.dir("input") / "rotated.jpg", exif=exif, quality=100)
    image, _, _ = node().load("rotated.jpg", "none", 0, 0)
    assert image.shape == (1, 32, 16, 3)


def test_rgba_alpha_becomes_the_mask(comfy, node):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:8, :, 3] = 255  # top half opaque, bottom transparent
    Image.fromarray(rgba, "RGBA").save(comfy.dir("input") / "cutout.png")
    image, mask, _ = node().load("cutout.png", "none", 16, 16)
    assert image.shape == (1, 16, 16, 3)
    assert torch.allclose(image[0, ..., 0], torch.full((16, 16), 200 / 255))
    assert float(mask[0, :8].max()) == 0.0 and float(mask[0, 8:].min()) == 1.0


def test_palette_image_with_transparency(comfy, node):
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(0, (0, 0, 8, 4))
    palette.info["transparency"] = 0
    palette.save(comfy.dir("input") / "palette.png", transparency=0)
    image, mask, _ = node().load("palette.png", "none", 8, 8)
    assert torch.allclose(image[0, 4:, :, 0], torch.ones(4, 8))
    assert float(mask[0, :4].min()) == 1.0 and float(mask[0, 4:].max()) == 0.0


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../outside.png", "outside ComfyUI's input folder"),
        ("/etc/passwd", "outside ComfyUI's input folder"),
        ("missing.png", "does not exist"),
        ("sub/nested.png", "is not one of the files offered"),
    ],
)
def test_validation_rejects_bad_names(comfy, node, name, reason):
    gradient(8, 8).save(comfy.root / "outside.png")
    (comfy.dir("input") / "sub").mkdir()
    gradient(8, 8).save(comfy.dir("input") / "sub" / "nested.png")
    message = node.VALIDATE_INPUTS(image=name)
    assert isinstance(message, str) and reason in message and name in message
    with pytest.raises(ValueError, match="input folder"):
        node().load(name, "pad", 64, 64)


def test_symlink_leaving_the_input_folder_is_rejected(comfy, node):
    gradient(8, 8).save(comfy.root / "secret.png")
    os.symlink(comfy.root / "secret.png", comfy.dir("input") / "link.png")
    assert "link.png" in node.INPUT_TYPES()["required"]["image"][0]
    assert "outside ComfyUI's input folder" in node.VALIDATE_INPUTS(image="link.png")


def test_listing_validation_and_hash(comfy, node):
    gradient(8, 8).save(comfy.dir("input") / "a.png")
    (comfy.dir("input") / "notes.txt").write_text("not an image")
    choices, options = node.INPUT_TYPES()["required"]["image"]
    assert choices == ["a.png"] and options["image_upload"] is True
    assert node.VALIDATE_INPUTS(image="a.png") is True
    before = node.IS_CHANGED(image="a.png")
    gradient(8, 9).save(comfy.dir("input") / "a.png")
    assert node.IS_CHANGED(image="a.png") != before
