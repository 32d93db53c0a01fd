"""MagicAnimate_LoadVideo and the bundled example motion, without ComfyUI."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from magicanimate_core.media.video_io import write_video
from tests.nodes.fake_comfy import install

EXAMPLE = "example: synthetic walk (DensePose)"


@pytest.fixture
def comfy(monkeypatch, tmp_path):
    return install(monkeypatch, tmp_path)


@pytest.fixture
def node(pack):
    return pack.NODE_CLASS_MAPPINGS["MagicAnimate_LoadVideo"]


@pytest.fixture
def examples(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.examples")


def random_frames(count: int, height: int = 24, width: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_lossless_video_loads_exactly(comfy, node):
    frames = random_frames(10)
    write_video(comfy.dir("input") / "clip.mkv", frames, 12.5, format="ffv1-mkv")
    images, fps, count = node().load("clip.mkv", 0, 0, 1, 0.0)
    assert images.shape == (10, 24, 32, 3) and images.dtype == torch.float32
    assert fps == 12.5 and count == 10
    assert np.array_equal((images * 255).round().to(torch.uint8).numpy(), frames)


def test_frame_selection_controls(comfy, node):
    frames = random_frames(20)
    write_video(comfy.dir("input") / "clip.mkv", frames, 20, format="ffv1-mkv")
    images, fps, count = node().load("clip.mkv", 4, 3, 2, 0.0)
    assert count == 4 and fps == 10.0
    assert np.array_equal((images * 255).round().to(torch.uint8).numpy(), frames[3:11:2])


def test_no_frames_left_is_a_clear_error(comfy, node):
    write_video(comfy.dir("input") / "clip.mkv", random_frames(5), 25, format="ffv1-mkv")
    with pytest.raises(ValueError, match=r"No frames left in 'clip.mkv' \(5 frames at 25 fps\).*skip_first_frames"):
        node().load("clip.mkv", 0, 50, 1, 0.0)


def test_listing_and_validation(comfy, node):
    write_video(comfy.dir("input") / "clip.mp4", random_frames(2), 25)
    (comfy.dir("input") / "picture.txt").write_text("x")
    choices, options = node.INPUT_TYPES()["required"]["video"]
    assert choices == ["clip.mp4", EXAMPLE] and options["video_upload"] is True
    assert node.VALIDATE_INPUTS(video="clip.mp4") is True
    assert node.VALIDATE_INPUTS(video=EXAMPLE) is True
    assert "outside ComfyUI's input folder" in node.VALIDATE_INPUTS(video="../../etc/passwd")
    assert "does not exist" in node.VALIDATE_INPUTS(video="gone.mp4")
    assert node.IS_CHANGED(video=EXAMPLE) == EXAMPLE
    stat = (comfy.dir("input") / "clip.mp4").stat()  # path, size and mtime: no hashing on every queue
    assert node.IS_CHANGED(video="clip.mp4") == f"{comfy.dir('input') / 'clip.mp4'}|{stat.st_size}|{stat.st_mtime_ns}"


def test_example_motion_loads_through_the_temp_folder(comfy, node, examples):
    images, fps, count = node().load(EXAMPLE, 0, 0, 1, 0.0)
    assert (count, fps, tuple(images.shape)) == (48, 25.0, (48, 512, 512, 3))
    expected = np.stack(list(examples.EXAMPLES[EXAMPLE].frames()))
    assert np.array_equal((images * 255).round().to(torch.uint8).numpy(), expected)  # FFV1 is lossless
    assert (comfy.dir("temp") / "magicanimate_examples" / "synthetic_walk.mkv").is_file()
    again, _, _ = node().load(EXAMPLE, 16, 0, 1, 0.0)  # reuses the cached file
    assert torch.equal(again, images[:16])


def test_example_looks_like_densepose(examples):
    example = examples.EXAMPLES[EXAMPLE]
    frames = list(example.frames())
    first = frames[0]
    assert tuple(first[0, 0]) == (68, 1, 84)  # DensePose background, viridis(0)
    colours = {tuple(int(v) for v in c) for c in first.reshape(-1, 3)}
    assert colours <= {tuple(int(v) for v in c) for c in examples.palette("viridis")} and len(colours) >= 6
    assert np.array_equal(frames[0], frames[24])  # one stride every 24 frames: the clip loops
    assert not np.array_equal(frames[0], frames[6])
    small = examples.walk_frame(2 * np.pi * 6 / 24, 64)  # any size: the figure is drawn in relative units
    assert small.shape == (64, 64, 3) and tuple(small[0, 0]) == (68, 1, 84)
    assert len({tuple(int(v) for v in c) for c in small.reshape(-1, 3)}) >= 4
    assert not np.array_equal(small, examples.walk_frame(2 * np.pi * 7 / 24, 64))  # the phase moves the figure


def test_width_height_fit_resize_with_exact_palette_colours(comfy, node):
    palette = np.array([[68, 1, 84], [253, 231, 37], [33, 145, 140]], np.uint8)
    labels = np.random.default_rng(1).integers(1, 3, (3, 24, 32))
    labels[:, :2] = labels[:, -2:] = labels[:, :, :2] = labels[:, :, -2:] = 0  # background border
    write_video(comfy.dir("input") / "dp.mkv", palette[labels], 25, format="ffv1-mkv")
    same, _, _ = node().load("dp.mkv", 0, 0, 1, 0.0, 0, 0, "pad")
    assert same.shape == (3, 24, 32, 3)  # 0 x 0 = the source size, untouched
    for fit in ("pad", "crop", "stretch"):
        images, _, count = node().load("dp.mkv", 0, 0, 1, 0.0, 64, 64, fit)
        assert images.shape == (3, 64, 64, 3) and count == 3
        colours = {tuple(c) for c in (images * 255).round().to(torch.uint8).reshape(-1, 3).tolist()}
        assert colours <= {tuple(c) for c in palette.tolist()}, fit
    padded, _, _ = node().load("dp.mkv", 0, 0, 1, 0.0, 64, 64, "pad")
    assert torch.equal((padded[:, :8] * 255).round(), torch.tensor([68.0, 1, 84]).expand(3, 8, 64, 3))
    tall, _, _ = node().load("dp.mkv", 0, 0, 1, 0.0, 0, 48, "stretch")
    assert tall.shape == (3, 48, 32, 3)  # width 0 keeps the source width
