"""Window parallelism over torch.distributed (gloo on the CPU): the output of one process, no hangs.

Each rank is a separate process started with torchrun's environment variables (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT); `distributed_worker.py` runs the pipeline on it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from magicanimate_core.distributed import split_windows

WORKER = Path(__file__).with_name("distributed_worker.py")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # a hang fails the test instead of blocking the suite
VIDEO_MAX, VIDEO_MEAN = 1e-3, 5e-5  # the golden tolerances (test_golden_cases.py)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rank_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "OMP_NUM_THREADS": "1",
    }


def run_ranks(world_size: int, model_dir: Path, case, tmp_path: Path, windows: int, overlap: int = 4, **extra):
    """Run the case on `world_size` processes; returns rank 0's video (or None) and each rank's result."""
    inputs = {
        "reference": case.reference,
        "motion": case.motion,
        "noise": case.noise,
        "steps": extra.pop("steps", 2),
        "context_overlap": overlap,
        "windows": windows,
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    output = tmp_path / "video.pt"
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in extra.items()]
    port = free_port()
    command = [sys.executable, str(WORKER), str(model_dir), str(tmp_path / "inputs.pt"), str(output), *flags]
    ranks = [
        subprocess.Popen(
            command,
            env=rank_environment(r, world_size, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(world_size)
    ]
    results = []
    try:
        for process in ranks:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            results.append((process.returncode, stdout, stderr))
    finally:
        for process in ranks:
            process.kill()
    return (torch.load(output, weights_only=True) if output.exists() else None), results


def single(pipe, case, steps: int = 2, overlap: int = 4) -> torch.Tensor:
    return pipe(case.reference, case.motion, noise=case.noise, num_inference_steps=steps, context_overlap=overlap)


def test_shares_are_contiguous_balanced_and_cover_every_window() -> None:
    assert [split_windows(5, 2, r) for r in range(2)] == [[0, 1, 2], [3, 4]]
    assert [split_windows(2, 3, r) for r in range(3)] == [[0], [1], []]
    assert [split_windows(4, 1, 0)] == [[0, 1, 2, 3]]


@pytest.mark.slow
def test_two_ranks_match_one_process_on_four_windows(tiny_pretrained_dir, tiny_pipeline, case_b, tmp_path) -> None:
    long = type(case_b)(case_b.reference, torch.cat([case_b.motion, case_b.motion])[:40], case_b.noise, {}, 2)
    video, results = run_ranks(2, tiny_pretrained_dir, long, tmp_path, windows=4)  # 40 frames -> 48: 4 windows
    assert [code for code, *_ in results] == [0, 0], results
    assert "rank 0 windows [0, 1] frames 40" in results[0][1]
    assert "rank 1 windows [2, 3] frames 0" in results[1][1]
    error = (video - single(tiny_pipeline, long)).abs()
    assert error.max() <= VIDEO_MAX and error.mean() <= VIDEO_MEAN


@pytest.mark.slow
def test_golden_case_b_on_two_ranks(golden_pretrained_dir, golden_case_b, tmp_path) -> None:
    video, results = run_ranks(2, golden_pretrained_dir, golden_case_b, tmp_path, windows=3, steps=golden_case_b.steps)
    assert [code for code, *_ in results] == [0, 0], results
    error = (video - golden_case_b.outputs["video"]).abs()
    assert video.shape == golden_case_b.outputs["video"].shape
    assert error.max() <= VIDEO_MAX and error.mean() <= VIDEO_MEAN


@pytest.mark.slow
def test_an_idle_rank_joins_every_step(tiny_pretrained_dir, tiny_pipeline, case_b, tmp_path) -> None:
    # 20 frames -> 32 with overlap 0: two windows for three ranks; rank 2 only adds zeros.
    video, results = run_ranks(3, tiny_pretrained_dir, case_b, tmp_path, windows=2, overlap=0, steps=1)
    assert [code for code, *_ in results] == [0, 0, 0], results
    assert "rank 2 windows [] frames 0" in results[2][1]
    assert (video - single(tiny_pipeline, case_b, steps=1, overlap=0)).abs().max() <= VIDEO_MAX


@pytest.mark.slow
def test_an_error_on_one_rank_ends_every_rank_with_its_message(tiny_pretrained_dir, case_b, tmp_path) -> None:
    video, results = run_ranks(2, tiny_pretrained_dir, case_b, tmp_path, windows=3, fail_rank=1, steps=1)
    assert video is None
    for code, _, stderr in results:
        assert code != 0
        assert "RankFailed: rank 1 of 2 failed: ValueError: injected failure on rank 1 at step 0" in stderr


def torchrun_animate(models: Path, reference: Path, motion: Path, output: Path) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node 2 -m magicanimate_core animate ...` on the CPU, 2 steps at 64x64."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port"]
    command += [str(free_port()), "-m", "magicanimate_core", "animate", "--models-dir", str(models)]
    command += ["--reference", str(reference), "--motion", str(motion), "--output", str(output)]
    command += ["--steps", "2", "--size", "64", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=output.parent)


def models_folder(tiny_pretrained_dir: Path, tmp_path: Path) -> Path:
    models = tmp_path / "models"
    (models / "magicanimate").mkdir(parents=True)
    (models / "magicanimate" / "tiny").symlink_to(tiny_pretrained_dir, target_is_directory=True)
    return models


@pytest.mark.slow
def test_torchrun_cli_writes_one_output(tiny_pretrained_dir, case_b, tmp_path) -> None:
    video_io = pytest.importorskip("magicanimate_core.media.video_io")
    reference = tmp_path / "reference.png"
    Image.fromarray((case_b.reference * 255).round().byte().numpy()).save(reference)
    frames = [(frame * 255).round().byte().numpy() for frame in case_b.motion]
    motion = video_io.write_video(tmp_path / "motion.mkv", frames, 25.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = torchrun_animate(models_folder(tiny_pretrained_dir, tmp_path), reference, motion, out_dir / "animated.mkv")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in out_dir.iterdir()] == ["animated.mkv"]
    assert result.stderr.count("wrote ") == 1 and "(20 frames at 25 fps, 2 ranks)" in result.stderr
    _, decoded = video_io.read_video(out_dir / "animated.mkv")
    assert len(list(decoded)) == 20


@pytest.mark.slow
def test_torchrun_cli_input_error_on_rank_0_ends_both_ranks(tiny_pretrained_dir, tmp_path) -> None:
    missing = tmp_path / "missing.png"
    result = torchrun_animate(models_folder(tiny_pretrained_dir, tmp_path), missing, missing, tmp_path / "out.mkv")
    assert result.returncode != 0
    message = f"error: rank 0 of 2 failed: FileNotFoundError: {missing}: no such file"
    assert result.stderr.count(message) == 2, result.stderr  # printed by both ranks
    assert not (tmp_path / "out.mkv").exists()
