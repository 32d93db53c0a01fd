"""`torchrun ... animate --extract-densepose`: the ranks split the DensePose frames; rank 0 writes one video."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.core.test_distributed import REPO, TIMEOUT, free_port, models_folder
from tests.sample_media import reference_image, walking_video


def animate(ranks: int, models: Path, folder: Path, frames: int) -> tuple[subprocess.CompletedProcess, Path]:
    """`animate --extract-densepose` on `ranks` processes (1: no torchrun) on a `frames`-frame clip."""
    video_io = pytest.importorskip("magicanimate_core.media.video_io")
    folder.mkdir()
    reference = folder / "reference.png"
    Image.fromarray(reference_image(64)).save(reference)
    motion = video_io.write_video(folder / "motion.mkv", list(walking_video(frames, 128)), 25.0)
    out = folder / "out"
    out.mkdir()
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port"]
    command = [*launch, str(free_port()), "-m"] if ranks > 1 else [sys.executable, "-m"]
    command += ["magicanimate_core", "animate", "--models-dir", str(models), "--extract-densepose"]
    command += ["--reference", str(reference), "--motion", str(motion), "--output", str(out / "animated.mkv")]
    command += ["--steps", "1", "--size", "64", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=folder)
    return result, out


@pytest.fixture
def models(tiny_pretrained_dir, tiny_densepose_pkl, tmp_path) -> Path:
    folder = models_folder(tiny_pretrained_dir, tmp_path)
    (folder / "densepose").mkdir()
    shutil.copy(tiny_densepose_pkl, folder / "densepose" / "model_final_162be9.pkl")
    return folder


def decoded(out: Path) -> list:
    video_io = pytest.importorskip("magicanimate_core.media.video_io")
    return list(video_io.read_video(out / "animated.mkv")[1])


@pytest.mark.slow
def test_two_ranks_extract_the_same_motion_as_one_process(models, tmp_path) -> None:
    # 6 frames at 128 px: the tiny R-CNN finds people on both ranks' shares (frames 0-2 and 3-5), not alike
    one, one_out = animate(1, models, tmp_path / "one", frames=6)
    two, two_out = animate(2, models, tmp_path / "two", frames=6)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert [p.name for p in two_out.iterdir()] == ["animated.mkv"]
    assert two.stderr.count("wrote ") == 1 and "(6 frames at 25 fps, 2 ranks)" in two.stderr
    # 6 frames: one context window, so only the motion could differ; the R-CNN is deterministic per frame
    expected, got = decoded(one_out), decoded(two_out)
    assert len(got) == 6 and all((a == b).all() for a, b in zip(expected, got, strict=True))


@pytest.mark.slow
def test_more_ranks_than_frames_do_not_hang(models, tmp_path) -> None:
    three, out = animate(3, models, tmp_path / "three", frames=2)
    assert three.returncode == 0, three.stderr
    assert [p.name for p in out.iterdir()] == ["animated.mkv"]
    assert "(2 frames at 25 fps, 3 ranks)" in three.stderr


@pytest.mark.slow
def test_missing_densepose_weights_end_both_ranks_with_rank_0s_message(models, tmp_path) -> None:
    (models / "densepose" / "model_final_162be9.pkl").unlink()
    result, out = animate(2, models, tmp_path / "two", frames=2)
    assert result.returncode != 0
    assert result.stderr.count("error: rank 0 of 2 failed: ") == 2, result.stderr  # printed by both ranks
    assert "model_final_162be9" in result.stderr
    assert list(out.iterdir()) == []
