"""Issue 12 in the library: what a ComfyUI server cannot express (tests/e2e/test_hostile_inputs.py: the rest)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from magicanimate_core.media.frames import check_image_range
from magicanimate_core.media.images import read_image
from magicanimate_core.media.video_io import write_video
from magicanimate_core.options import Speedups
from magicanimate_core.pipeline import MagicAnimatePipeline
from magicanimate_core.validation import check_finite
from tests.hostile_files import black_png
from tests.memory_cap import run_capped

FRAMES = [np.zeros((16, 16, 3), np.uint8)] * 5


@pytest.mark.parametrize(
    "value, refusal",
    [
        (math.nan, "guidance_scale is nan, which is not a finite number; enter a finite number (7.5)"),
        (math.inf, "guidance_scale is inf, which is not a finite number"),
        ("7.5", "guidance_scale must be a number, got '7.5'"),
        (True, "guidance_scale must be a number, got True"),
    ],
)
def test_check_finite_refuses(value, refusal):
    with pytest.raises(ValueError, match=f"^{refusal}".replace("(", r"\(").replace(")", r"\)")):
        check_finite("guidance_scale", value, "7.5")


def test_check_finite_accepts_numbers():
    assert check_finite("fps", 25) == 25.0 and check_finite("x", np.float32(0.5)) == 0.5


def test_pipeline_refuses_nan_guidance_before_any_work():
    pipeline = MagicAnimatePipeline.__new__(MagicAnimatePipeline)  # no models: the check comes first
    with pytest.raises(ValueError, match="^guidance_scale is nan, which is not a finite number"):
        pipeline(torch.zeros(8, 8, 3), torch.zeros(1, 8, 8, 3), guidance_scale=math.nan, speedups=Speedups())


@pytest.mark.parametrize(
    "images, refusal",
    [
        (torch.full((2, 4, 4, 3), 200.0), r"pixel values span \[200, 200\].*divide them by 255"),
        (torch.full((1, 4, 4, 3), -0.5), r"span \[-0.5, -0.5\].*clamp them to \[0, 1\]"),
        (torch.tensor([0.5, 2.0, 0.0]).expand(4, 64, 64, 3), r"span \[0, 2\]"),  # a broadcast view
        (torch.zeros((1, 4, 4, 3), dtype=torch.uint8), r"pixels are torch.uint8.*convert them with x / 255"),
        (torch.zeros(3, 2, 2, 3).index_fill_(1, torch.tensor([1]), math.inf), "18 of 36 .* in 3 frames"),
    ],
)
def test_image_range_refusals_name_the_input_and_fix(images, refusal):
    with pytest.raises(ValueError, match=f"^motion \\(the node connected to motion\\): .*{refusal}"):
        check_image_range(images, "motion (the node connected to motion)")


def test_image_range_accepts_valid_and_empty_batches():
    check_image_range(torch.rand(2, 4, 4, 3), "images")
    check_image_range(torch.zeros(0, 0, 0, 3), "images")


def test_16_bit_grey_is_scaled_from_its_own_range(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(path)
    rgba = read_image(path)
    assert np.allclose(rgba[0, :, 0], [0, 32768 / 65535, 1]) and np.all(rgba[..., 3] == 1)


def test_picture_bombs_are_refused_from_the_header_under_a_memory_cap(tmp_path):
    """13000x13000 (2.7 GB as float RGBA): over a small budget by size; within a large one, PIL's bomb limit."""
    huge, large = black_png(tmp_path / "huge.png", 13000, 13000), black_png(tmp_path / "large.png", 9000, 9000)
    code = f"""
        from magicanimate_core.media.images import read_image
        for path in ({str(huge)!r}, {str(large)!r}):
            try:
                read_image(path)
                print("LOADED")
            except (ValueError, MemoryError) as error:
                print(type(error).__name__, error)
        """
    small_budget = run_capped(code, cap_bytes=2 << 30, budget_mb=500, timeout=30)
    assert small_budget.returncode == 0, small_budget.stderr
    assert small_budget.stdout.splitlines() == [
        f"MemoryBudgetError {huge}: a 13000x13000 picture needs 2.7 GB of memory, more than the budget of 500.0 MB "
        "($MAGICANIMATE_MEMORY_BUDGET_MB=500); nothing was loaded. Downscale it to at most 5590x5590 pixels (the "
        "animation itself is at most 2048x2048) and upload it again.",
        f"MemoryBudgetError {large}: a 9000x9000 picture needs 1.3 GB of memory, more than the budget of 500.0 MB "
        "($MAGICANIMATE_MEMORY_BUDGET_MB=500); nothing was loaded. Downscale it to at most 5590x5590 pixels (the "
        "animation itself is at most 2048x2048) and upload it again.",
    ]
    large_budget = run_capped(code, cap_bytes=2 << 30, budget_mb=100_000, timeout=30)
    assert large_budget.returncode == 0, large_budget.stderr
    assert large_budget.stdout.splitlines()[0] == (
        f"ValueError {huge}: the picture declares 13000x13000 pixels, more than PIL decodes safely (89478485 "
        "pixels); downscale it below 4096x4096 before uploading"
    )


def test_nul_in_a_video_path_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"a file name cannot contain a NUL character \(\\0\); remove it"):
        write_video(tmp_path / "new" / "x\0y.mp4", FRAMES, 25)
    assert list(tmp_path.iterdir()) == []  # not even the folder


def test_overlong_video_name_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="too long for the file system; shorten it by 8 characters"):
        write_video(tmp_path / "new" / ("a" * 240 + ".mp4"), FRAMES, 25)
    assert list(tmp_path.iterdir()) == []


class Cancelled(Exception):
    pass


def test_on_frame_can_stop_a_write_and_the_temporary_file_goes(tmp_path: Path):
    seen = []

    def on_frame(done: int) -> None:
        seen.append(done)
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        write_video(tmp_path / "clip.mp4", FRAMES, 25, on_frame=on_frame)
    assert seen == [1, 2, 3] and list(tmp_path.iterdir()) == []
    write_video(tmp_path / "clip.mp4", FRAMES, 25, on_frame=seen.append)
    assert seen[3:] == [1, 2, 3, 4, 5] and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize(
    "module, argv",
    [
        ("magicanimate_core.cli", ["animate", "ref.png", "motion.mp4", "-o", "out.mp4", "--guidance-scale", "nan"]),
        ("magicanimate_core.cli", ["animate", "ref.png", "motion.mp4", "-o", "out.mp4", "--fps", "inf"]),
        ("magicanimate_core.cli", ["animate", "ref.png", "motion.mp4", "-o", "out.mp4", "--force-rate", "nan"]),
        ("densepose_node.cli", ["extract", "v.mp4", "-o", "o.mp4", "--weights", "w.pkl", "--score-threshold", "nan"]),
    ],
)
def test_cli_float_flags_refuse_nan_and_inf(module, argv, capsys):
    parser = importlib.import_module(module).build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert f"argument {argv[-2]}: {argv[-1]!r} is not a finite number; enter one such as 7.5" in capsys.readouterr().err
