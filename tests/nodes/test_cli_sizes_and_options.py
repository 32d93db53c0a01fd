"""The CLI shares the nodes' sizes and options: motion fitted to the reference, crop-back, sampler options."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from magicanimate_core.cli import _speedups, build_parser, main
from magicanimate_core.media.video_io import read_video, write_video


def test_sampler_options_parse_like_the_options_node():
    common = ["animate", "--models-dir", "m", "--reference", "r.png", "--motion", "m.mp4", "--output", "o.mp4"]
    args = build_parser().parse_args(common)
    assert (args.scheduler, args.window_weighting, args.closed_loop, args.guidance_until) == (
        "ddim",
        "uniform",
        True,
        1,
    )
    assert args.motion_fit is None and args.crop_to_reference is False
    args = build_parser().parse_args(
        [*common, "--scheduler", "dpmpp", "--window-weighting", "pyramid", "--open-loop", "--guidance-until", "0.5"]
    )
    assert (args.scheduler, args.window_weighting, args.closed_loop, args.guidance_until) == (
        "dpmpp",
        "pyramid",
        False,
        0.5,
    )


def test_decode_threads_lever_parses_like_the_options_node():
    common = ["animate", "--models-dir", "m", "--reference", "r.png", "--motion", "m.mp4", "--output", "o.mp4"]
    cpu = torch.device("cpu")
    assert _speedups(build_parser().parse_args(common), cpu).decode_threads == 1
    assert _speedups(build_parser().parse_args([*common, "--decode-threads", "4"]), cpu).decode_threads == 4


def test_small_motion_and_a_portrait_come_out_in_the_portraits_aspect(tmp_path: Path, tiny_pretrained_dir):
    models = tmp_path / "models"
    (models / "magicanimate").mkdir(parents=True)
    os.symlink(tiny_pretrained_dir, models / "magicanimate" / "tiny")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (96, 54, 3), dtype=np.uint8)).save(tmp_path / "portrait.png")  # 9:16
    palette = np.array([[68, 1, 84], [253, 231, 37]], np.uint8)
    write_video(tmp_path / "motion.mkv", palette[rng.integers(0, 2, (3, 16, 16))], 25.0, format="ffv1-mkv")
    out = tmp_path / "out.mkv"
    args = ["animate", "--models-dir", str(models), "--reference", str(tmp_path / "portrait.png")]
    args += ["--motion", str(tmp_path / "motion.mkv"), "--output", str(out), "--size", "64", "--steps", "1"]
    args += ["--device", "cpu", "--dtype", "fp32", "--crop-to-reference", "--scheduler", "dpmpp"]
    assert main(args) == 0
    info, frames = read_video(out)
    assert (info.width, info.height, len(list(frames))) == (36, 64, 3)
