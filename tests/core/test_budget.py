"""Memory budget: declared allocations are refused before they are made (videos here; images and pickles elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from magicanimate_core.media.budget import BUDGET_ENV, MemoryBudgetError, check_allocation, memory_budget
from magicanimate_core.media.video_io import read_video
from tests.memory_cap import run_capped


def black_h264(path: Path, frames: int, width: int, height: int, container: str | None = None) -> Path:
    """`frames` black frames in very few bytes: one encoded key frame, then one all-skip P frame repeated."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bframes": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        black = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        encoded = []
        for index in range(2):
            black.pts = index
            encoded += stream.encode(black)
        encoded += stream.encode()
        key, skip = encoded[0], encoded[1]
        for index in range(frames):
            source = key if index == 0 else skip
            packet = av.Packet(bytes(source))
            packet.pts = packet.dts = index
            packet.time_base, packet.stream, packet.is_keyframe = source.time_base, stream, index == 0
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """The issue's input: a tiny file holding 1000 black 1920x1080 frames."""
    return black_h264(tmp_path_factory.mktemp("bomb") / "black_1000.mp4", 1000, 1920, 1080)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "250")
    assert memory_budget() == (250_000_000, f"${BUDGET_ENV}=250")
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(ValueError, match=f"{BUDGET_ENV}='lots' is not a number of megabytes"):
        memory_budget()


def test_budget_from_the_machine(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    budget, source = memory_budget()
    assert budget > 0
    if os.path.exists("/proc/meminfo"):
        assert source.startswith("80% of the ") and source.endswith(" available memory")


def test_refusal_names_what_sizes_and_fix(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "100")
    check_allocation("small.png: 10x10 pixels", 100_000_000, "unused")
    with pytest.raises(MemoryBudgetError) as error:
        check_allocation("big.png: 13000x13000 pixels", 2_028_000_000, lambda budget: f"use at most {budget} bytes")
    assert str(error.value) == (
        "big.png: 13000x13000 pixels needs 2.0 GB of memory, more than the budget of 100.0 MB "
        f"(${BUDGET_ENV}=100); nothing was loaded. use at most 100000000 bytes"
    )
    assert isinstance(error.value, MemoryError) and isinstance(error.value, ValueError)


def test_video_bomb_refused_before_decoding_under_a_memory_cap(bomb):
    """1000 frames of 1920x1080 with frame_load_cap 0 would be 24.9 GB as float32: refused at once."""
    assert bomb.stat().st_size < 60_000
    child = run_capped(
        f"""
        import time
        from magicanimate_core.media.video_io import read_video
        start = time.perf_counter()
        try:
            read_video({str(bomb)!r}, frame_load_cap=0)
        except MemoryError as error:
            print(type(error).__name__, "|", error)
        print("seconds", time.perf_counter() - start)
        """,
        budget_mb=1000,
    )
    assert child.returncode == 0, child.stderr
    message = child.stdout.splitlines()[0]
    assert message == (
        f"MemoryBudgetError | {bomb}: 1000 frames of 1920x1080 (after the frame selection options) needs 24.9 GB "
        f"of memory, more than the budget of 1.0 GB (${BUDGET_ENV}=1000); nothing was loaded. At most 40 frames "
        "of 1920x1080 (24.9 MB each) fit: set frame_load_cap to 40 or less, raise select_every_nth, or scale the "
        "video down first."
    )


@pytest.mark.parametrize(
    ("options", "declared"),
    [
        ({"select_every_nth": 2}, 500),
        ({"skip_first_frames": 900}, 100),
        ({"skip_first_frames": 10, "select_every_nth": 3, "frame_load_cap": 200}, 200),
        ({"force_rate": 5.0}, 200),
    ],
)
def test_selection_options_count_before_the_check(bomb, monkeypatch, options, declared):
    monkeypatch.setenv(BUDGET_ENV, "1000")
    with pytest.raises(MemoryBudgetError, match=rf"^{bomb}: {declared} frames of 1920x1080 "):
        read_video(bomb, **options)


def test_what_fits_is_loaded_under_the_cap(bomb):
    child = run_capped(
        f"""
        from magicanimate_core.media.video_io import read_video
        info, frames = read_video({str(bomb)!r}, frame_load_cap=5, select_every_nth=100)
        kept = list(frames)
        print(len(kept), *kept[0].shape, max(int(frame.max()) for frame in kept))
        """,
        budget_mb=1000,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["5", "1080", "1920", "3", "0"]


def test_a_file_holding_more_frames_than_declared_stops_when_they_stop_fitting(tmp_path, monkeypatch):
    raw = black_h264(tmp_path / "undeclared.h264", 20, 64, 64, container="h264")  # no frame count in the header
    monkeypatch.setenv(BUDGET_ENV, "0.25")  # 5 frames of 64x64 float32 RGB (49 kB each)
    info, frames = read_video(raw)
    assert info.source_frame_count == 0
    kept = []
    with pytest.raises(MemoryBudgetError) as error:
        kept.extend(frames)
    assert len(kept) == 5
    assert str(error.value).startswith(
        f"{raw}: 6 frames of 64x64 (more than its header declares: 0) needs 294.9 kB of memory, more than the "
        "budget of 250.0 kB"
    )
    assert "set frame_load_cap to 5 or less" in str(error.value)


def test_streaming_callers_opt_out(bomb, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "1")
    _, frames = read_video(bomb, hold_frames=False, select_every_nth=500)
    assert len(list(frames)) == 2
