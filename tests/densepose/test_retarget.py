"""retarget_labels on synthetic capsule bodies (bench/bodies.py) whose ideal result is known."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.bodies import BUILDS, Pose, clip, dance, draw, ideal
from bench.retarget import part_iou, silhouette_iou
from densepose_node.cli import main
from densepose_node.render import colorize
from densepose_node.retarget import bone_lengths, extent, retarget_frames, retarget_labels
from magicanimate_core.cli import main as animate_main
from magicanimate_core.media.video_io import read_video, write_video

SIZE = (256, 256)


def box(labels: np.ndarray) -> np.ndarray:
    """(top, bottom, left, right) of the body in each frame [F, 4]."""
    rows, cols = (labels > 0).any(2), (labels > 0).any(1)
    first = lambda mask: mask.argmax(1)  # noqa: E731
    last = lambda mask: mask.shape[1] - mask[:, ::-1].argmax(1)  # noqa: E731
    return np.stack([first(rows), last(rows), first(cols), last(cols)], 1)


@pytest.fixture(scope="module")
def proportions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A long-limbed reference, a stocky dancer at another size and place, and the ideal result."""
    reference_build = replace(BUILDS["long-limbed"], unit=150.0)
    motion_build = replace(BUILDS["stocky"], unit=110.0)
    reference = draw(reference_build, Pose((125.0, 125.0)), SIZE)
    poses = dance(12, (95.0, 130.0), motion_build.unit)
    motion = clip(motion_build, poses, SIZE)
    return reference, motion, ideal(reference, reference_build, poses, motion[0])


def test_global_recovers_a_pure_scale_and_translation():
    build = BUILDS["average"]
    poses = dance(10, (90.0, 140.0), 100.0)
    motion = clip(replace(build, unit=100.0), poses, SIZE)
    first = replace(poses[0], root=(130.0, 120.0))  # the reference photo: same body, same pose, bigger, elsewhere
    reference = draw(replace(build, unit=140.0), first, SIZE)
    expected = ideal(reference, replace(build, unit=140.0), poses, motion[0])
    out = retarget_labels(reference, motion, "global")
    assert np.abs(box(out) - box(expected)).max() <= 2  # feet, head, both sides within 2 px in every frame
    assert np.abs(box(out[:1]) - box(reference[None])).max() <= 1
    assert silhouette_iou(out, expected) > 0.9


def test_travel_is_scaled_with_the_body():
    build = BUILDS["average"]
    poses = [Pose((80.0 + 6 * t, 140.0)) for t in range(5)]  # walks 24 px right, pose unchanged
    motion = clip(replace(build, unit=100.0), poses, SIZE)
    reference = draw(replace(build, unit=150.0), Pose((120.0, 120.0)), SIZE)
    out = retarget_labels(reference, motion, "global")
    centres = [extent(frame, "out").centre_x for frame in out]
    assert centres[-1] - centres[0] == pytest.approx(24 * 1.5, abs=1.5)


def test_parts_beats_global_on_different_proportions(proportions):
    reference, motion, expected = proportions
    scores = {}
    for mode in ("off", "global", "parts"):
        out = retarget_labels(reference, motion, mode)
        scores[mode] = silhouette_iou(out, expected), part_iou(out, expected)
    assert scores["parts"][0] > scores["global"][0] + 0.1
    assert scores["parts"][1] > scores["global"][1] + 0.1
    assert scores["global"][0] > scores["off"][0]


def test_parts_gives_the_reference_bone_lengths(proportions):
    reference, motion, _ = proportions
    wanted = bone_lengths(reference[None])
    errors = {
        mode: np.nanmean(np.abs(bone_lengths(retarget_labels(reference, motion, mode)) / wanted - 1))
        for mode in ("global", "parts")
    }
    assert errors["parts"] < 0.1 < errors["global"]


def test_off_returns_the_motion_unchanged(proportions):
    reference, motion, _ = proportions
    out = retarget_labels(reference, motion, "off")
    assert np.array_equal(out, motion) and out is not motion


def test_deterministic_and_keeps_part_indices(proportions):
    reference, motion, _ = proportions
    first, second = retarget_labels(reference, motion), retarget_labels(reference, motion)
    assert np.array_equal(first, second)
    assert first.dtype == np.uint8 and first.shape == motion.shape
    assert set(np.unique(first)) <= set(np.unique(motion))  # front / back indices kept, nothing invented


def test_missing_parts(proportions):
    reference, motion, _ = proportions
    hidden_arm = np.where(np.isin(reference, (15, 17, 19, 21, 4)), 0, reference)  # left arm hidden in the photo
    out = retarget_labels(hidden_arm, motion)
    assert np.isin(out, (15, 17, 19, 21)).any(axis=(1, 2)).all()  # still drawn, at the global scale
    motion = motion.copy()
    motion[3][motion[3] == 3] = 0  # the right hand leaves frame 3
    out = retarget_labels(reference, motion)
    assert not (out[3] == 3).any() and (out[2] == 3).any()


def test_align_frame_and_progress(proportions):
    reference, motion, _ = proportions
    motion = np.concatenate([np.zeros_like(motion[:1]), motion])  # nobody in the first frame: walks in
    done = []
    out = retarget_labels(reference, motion, align_frame=1, progress=done.append)
    assert done == list(range(1, len(motion) + 1))
    assert not out[0].any()
    assert np.array_equal(retarget_labels(reference, motion), out)  # frame 0 is empty: frame 1 is measured
    assert not np.array_equal(retarget_labels(reference, motion, align_frame=5), out)
    with pytest.raises(ValueError, match="no motion frame from align_frame 0 on shows body parts"):
        retarget_labels(reference, np.zeros_like(motion))

    def cancel(frames_done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retarget_labels(reference, motion, "global", align_frame=1, progress=cancel)


def test_errors_name_the_problem(proportions):
    reference, motion, _ = proportions
    with pytest.raises(ValueError, match="reference shows no body parts"):
        retarget_labels(np.zeros_like(reference), motion)
    with pytest.raises(ValueError, match="reference is 128x256 but the motion frames are 256x256"):
        retarget_labels(reference[:, :128], motion)
    with pytest.raises(ValueError, match="unknown retarget mode 'bones'"):
        retarget_labels(reference, motion, "bones")
    with pytest.raises(ValueError, match="align_frame 99 is outside"):
        retarget_labels(reference, motion, align_frame=99)


def test_cli_retarget(proportions, tmp_path, capsys):
    reference, motion, _ = proportions
    Image.fromarray(colorize(reference, "parula-black")).save(tmp_path / "reference.png")
    write_video(tmp_path / "motion.mkv", colorize(motion, "parula-black"), 25)
    argv = ["retarget", "--reference-densepose", str(tmp_path / "reference.png"), "--motion"]
    argv.append(str(tmp_path / "motion.mkv"))
    assert main([*argv, "-o", str(tmp_path / "out.mkv"), "--mode", "global", "--frame-load-cap", "4"]) == 0
    _, frames = read_video(tmp_path / "out.mkv")
    expected = colorize(retarget_labels(reference, motion[:4], "global"), "parula-black")
    assert np.array_equal(np.stack(list(frames)), expected)
    assert main([*argv, "-o", str(tmp_path / "out.mkv")]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    Image.fromarray(colorize(reference)).save(tmp_path / "photo.png")
    assert main(["retarget", "--reference", str(tmp_path / "photo.png"), "--motion", "x.mkv", "-o", "y.mkv"]) == 2
    assert "--weights is needed" in capsys.readouterr().err


def test_retarget_frames_renders_and_warns_on_lossy_motion(proportions, tmp_path, caplog):
    reference, motion, _ = proportions
    out = retarget_frames(reference, colorize(motion, "parula-black"), "parts")
    assert np.array_equal(out, colorize(retarget_labels(reference, motion, "parts"), "parula-black"))
    assert "not exact DensePose colours" not in caplog.text
    _, frames = read_video(write_video(tmp_path / "motion.mp4", colorize(motion), 25))
    lossy = retarget_frames(reference, np.stack(list(frames)), "global")
    assert lossy.shape == (len(motion), *SIZE, 3)
    assert "not exact DensePose colours (a lossy video?)" in caplog.text


def test_animate_cli_retarget(tmp_path, tiny_pretrained_dir, golden_dir):
    models = tmp_path / "models"
    (models / "magicanimate").mkdir(parents=True)
    (models / "densepose").mkdir()
    os.symlink(tiny_pretrained_dir, models / "magicanimate" / "tiny")
    weights = golden_dir / "densepose" / "weights" / "tiny_densepose.pkl"
    os.symlink(weights, models / "densepose" / "model_final_162be9.pkl")
    photo = Image.open(golden_dir / "densepose" / "frames" / "frame_00" / "input_rgb.png").convert("RGB")
    photo.resize((64, 64)).save(tmp_path / "photo.png")
    motion = clip(replace(BUILDS["stocky"], unit=40.0), dance(3, (28.0, 34.0), 40.0), (64, 64))
    write_video(tmp_path / "motion.mkv", colorize(motion), 25.0)
    args = ["animate", "--models-dir", str(models), "--reference", str(tmp_path / "photo.png")]
    args += ["--motion", str(tmp_path / "motion.mkv"), "--size", "64", "--steps", "1", "--device", "cpu"]
    args += ["--dtype", "fp32", "--retarget", "parts", "--output", str(tmp_path / "out.mkv")]
    assert animate_main(args) == 0
    info, frames = read_video(tmp_path / "out.mkv")
    assert (info.width, info.height, len(list(frames))) == (64, 64, 3)
    check = (
        "import sys; from magicanimate_core.cli import build_parser; "
        "build_parser().parse_args(['animate', '--reference', 'r', '--motion', 'm', '--output', 'o']); "
        "assert 'densepose_node' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], check=True, cwd=Path(__file__).resolve().parents[2])
