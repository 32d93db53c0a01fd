"""Video file I/O: golden decode, lossless round trips, every format, VHS controls, streaming, atomic writes."""

from __future__ import annotations

import math
import os
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from magicanimate_core.media.video_io import FORMATS, probe_video, read_video, write_video

ODD_SIZE = (31, 33)  # height, width


def numbered(count: int, size: tuple[int, int] = ODD_SIZE) -> np.ndarray:
    """Frames whose every pixel stores the frame index (red = low byte, green = high byte)."""
    frames = np.zeros((count, *size, 3), np.uint8)
    frames[..., 0] = (np.arange(count) % 256)[:, None, None]
    frames[..., 1] = (np.arange(count) // 256)[:, None, None]
    return frames


def index_of(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def gradient(count: int, size: tuple[int, int] = ODD_SIZE) -> np.ndarray:
    """Smooth moving colour ramps, easy for lossy codecs."""
    y, x = np.mgrid[: size[0], : size[1]]
    return np.stack([np.stack([x * 6 + 8 * i, y * 6, np.full_like(x, 100 + 10 * i)], -1) for i in range(count)]).astype(
        np.uint8
    )


@pytest.fixture(scope="module")
def numbered_30fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("vhs") / "n30.mkv", numbered(30), 30)


def test_golden_video_decodes_exactly(golden_dir: Path) -> None:
    folder = golden_dir / "densepose" / "video"
    info, frames = read_video(folder / "synthetic_walk_256.mp4")
    expected = np.load(folder / "decoded_rgb.npy")
    assert (info.width, info.height, info.source_fps, info.source_frame_count) == (256, 256, 25.0, 12)
    np.testing.assert_array_equal(np.stack(list(frames)), expected)


@pytest.mark.parametrize("name", [name for name, spec in FORMATS.items() if "lossless" in spec[4]])
def test_lossless_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (4, *ODD_SIZE, 3), dtype=np.uint8)
    path = write_video(tmp_path / "clip", frames, 12, format=name)
    np.testing.assert_array_equal(np.stack(list(read_video(path)[1])), frames)
    # float frames in [0, 1] are stored as round(x * 255); RGBA loses its alpha
    floats = np.clip(frames - 0.4, 0, 255) / 255
    rgba = np.concatenate([floats, np.zeros((*frames.shape[:3], 1))], axis=-1)
    path = write_video(tmp_path / "float", rgba, 12, format=name)
    np.testing.assert_array_equal(np.stack(list(read_video(path)[1])), frames)


def webp_frames_and_rate(path: Path) -> tuple[np.ndarray, float]:
    """All frames of an animated WebP and its mean rate, read with Pillow; checks it loops forever."""
    frames, durations_ms = [], []
    with Image.open(path) as image:
        assert image.info["loop"] == 0
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            durations_ms.append(image.info["duration"])
    return np.stack(frames), 1000 / float(np.mean(durations_ms))


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_writes_a_decodable_file(tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    frames = gradient(5)
    path = write_video(tmp_path / f"clip{FORMATS[name][0]}", frames, 25)
    assert path.is_file() and os.listdir(tmp_path) == [path.name]
    if name == "webp":  # FFmpeg cannot decode animated WebP; Pillow can
        decoded, fps = webp_frames_and_rate(path)
    else:
        info, frames_read = read_video(path)
        decoded, fps = np.stack(list(frames_read)), info.source_fps
        assert (info.width, info.height) == decoded.shape[2:0:-1]
    even = name == "h264-mp4"
    assert decoded.shape == (5, 32 if even else 31, 34 if even else 33, 3)
    assert fps == pytest.approx(25, rel=0.02)
    error = np.abs(decoded[:, :31, :33].astype(int) - frames).mean()
    assert error < 6, f"{name}: mean error {error:.1f} levels"
    if even:  # the odd size was padded by repeating the last row and column
        assert np.abs(decoded[:, 31].astype(int) - decoded[:, 30]).mean() < 6
        assert np.abs(decoded[:, :, 33].astype(int) - decoded[:, :, 32]).mean() < 6
        assert "33x31 padded to 34x32" in caplog.text


@pytest.mark.parametrize("name", ["h264-mp4", "vp9-webm", "webp"])
def test_higher_quality_gives_bigger_files(tmp_path: Path, name: str) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    low, high = (write_video(tmp_path / f"q{q}", frames, 8, format=name, quality=q) for q in (10, 90))
    assert high.stat().st_size > 2 * low.stat().st_size


@pytest.mark.parametrize(
    ("controls", "expected"),
    [
        ({}, list(range(30))),
        ({"frame_load_cap": 5}, list(range(5))),
        ({"skip_first_frames": 7}, list(range(7, 30))),
        ({"select_every_nth": 4}, list(range(0, 30, 4))),
        ({"skip_first_frames": 3, "select_every_nth": 5, "frame_load_cap": 4}, [3, 8, 13, 18]),
        ({"force_rate": 10}, list(range(0, 30, 3))),
        # VHS order: resample to 10 fps first, then skip 2 of those, then every 2nd
        ({"force_rate": 10, "skip_first_frames": 2, "select_every_nth": 2}, [6, 12, 18, 24]),
        ({"skip_first_frames": 40}, []),
    ],
)
def test_vhs_controls_pick_the_expected_frames(numbered_30fps: Path, controls: dict, expected: list[int]) -> None:
    info, frames = read_video(numbered_30fps, **controls)
    assert [index_of(frame) for frame in frames] == expected
    rate = controls.get("force_rate", 30) / controls.get("select_every_nth", 1)
    assert info.output_fps == pytest.approx(rate)


def test_force_rate_repeats_frames_when_upsampling(tmp_path: Path) -> None:
    path = write_video(tmp_path / "n10.mkv", numbered(10), 10)
    _, frames = read_video(path, force_rate=25)
    # output time k/25 takes the first source frame at or after it, until the last frame's time (0.9 s)
    assert [index_of(frame) for frame in frames] == [math.ceil(k * 10 / 25) for k in range(23)]


def test_reading_streams_one_frame_at_a_time(tmp_path: Path) -> None:
    count, size = 120, (96, 128)
    path = write_video(tmp_path / "long.mkv", numbered(count, size), 24)
    total_bytes = count * size[0] * size[1] * 3
    tracemalloc.start()
    try:
        _, frames = read_video(path)
        seen = [index_of(frame) for frame in frames]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == list(range(count))
    assert peak < total_bytes / 10, f"peak {peak} bytes for {total_bytes} bytes of frames"


def raising_after(frames: np.ndarray, exc: BaseException):
    yield from frames
    raise exc


@pytest.mark.parametrize("exc", [RuntimeError("interrupted"), KeyboardInterrupt()])
@pytest.mark.parametrize("name", ["h264-mp4", "ffv1-mkv", "gif"])
def test_failed_write_leaves_no_file(tmp_path: Path, name: str, exc: BaseException) -> None:
    with pytest.raises(type(exc)):
        write_video(tmp_path / "out", raising_after(gradient(3), exc), 8, format=name)
    assert os.listdir(tmp_path) == []


def test_bad_frame_midway_leaves_no_file(tmp_path: Path) -> None:
    frames = [*gradient(2), np.zeros((8, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"frame 2: size 8x8 differs from frame 0's 33x31"):
        write_video(tmp_path / "out.mp4", frames, 8)
    assert os.listdir(tmp_path) == []


def test_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = write_video(tmp_path / "out.mkv", numbered(2), 8)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=f"{path} already exists"):
        write_video(path, numbered(3), 8)
    assert path.read_bytes() == before
    write_video(path, numbered(3), 8, overwrite=True)
    assert [index_of(frame) for frame in read_video(path)[1]] == [0, 1, 2]
    assert os.listdir(tmp_path) == ["out.mkv"]


def test_empty_input_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "out.mp4", [], 8)
    assert os.listdir(tmp_path) == []


def test_mp4_metadata_tags_are_readable(tmp_path: Path) -> None:
    tags = {"prompt": '{"1": {"class_type": "X"}}', "workflow": '{"nodes": []}'}
    path = write_video(tmp_path / "out.mp4", gradient(2, (16, 16)), 8, metadata=tags)
    with av.open(str(path)) as container:
        assert tags.items() <= container.metadata.items()


def test_format_follows_the_suffix(tmp_path: Path) -> None:
    assert write_video(tmp_path / "plain", gradient(1), 8) == tmp_path / "plain.mp4"
    assert write_video(tmp_path / "a.GIF", gradient(1), 8).suffix == ".GIF"
    with av.open(str(tmp_path / "a.GIF")) as container:
        assert container.format.name == "gif"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.full((31, 33, 3), 1.5), r"frame 1: float values must be in \[0, 1\], got min 1.5 max 1.5"),
        (np.full((31, 33, 3), np.nan), r"frame 1: float values must be in \[0, 1\]"),
        (np.zeros((31, 33, 3), np.int64), "frame 1: dtype int64 is not supported; pass uint8"),
        (np.zeros((31, 33), np.uint8), r"frame 1: shape \(31, 33\) is not \[H, W, 3\]"),
    ],
)
def test_bad_frames_are_named(tmp_path: Path, frame: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_video(tmp_path / "out.mkv", [gradient(1)[0], frame], 8)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: write_video(p / "a.mp4", gradient(1), 8, format="gif"), "format 'gif' writes .gif files"),
        (lambda p: write_video(p / "a.avi", gradient(1), 8), "unknown video suffix '.avi'"),
        (lambda p: write_video(p / "a", gradient(1), 8, format="h265"), "unknown video format 'h265'"),
        (lambda p: write_video(p / "a.mp4", gradient(1), 0), "fps must be a positive number"),
        (lambda p: write_video(p / "a.mp4", gradient(1), 8, quality=101), r"quality must be an integer in 0..100"),
        (lambda p: write_video(p / "a.mp4", gradient(1), 8, metadata={"a": 1}), "metadata keys and values"),
        (lambda p: read_video(p / "x.mkv", select_every_nth=0), "select_every_nth must be an integer >= 1"),
        (lambda p: read_video(p / "x.mkv", force_rate=-5), "force_rate must be a positive number"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, call, message: str) -> None:
    write_video(tmp_path / "x.mkv", numbered(1), 8)
    with pytest.raises(ValueError, match=message):
        call(tmp_path)
    assert os.listdir(tmp_path) == ["x.mkv"]


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'missing.mp4'} does not exist"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="is a folder"):
        probe_video(tmp_path)

    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ValueError, match=f"{text} is not a readable video"):
        read_video(text)

    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(write_video(tmp_path / "whole.mp4", gradient(6), 8).read_bytes()[:400])
    with pytest.raises(ValueError, match="corrupt, truncated or not a video"):
        probe_video(truncated)

    audio = tmp_path / "audio.mka"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        container.mux(stream.encode(samples))
        container.mux(stream.encode())
    with pytest.raises(ValueError, match="has no video stream"):
        read_video(audio)

    webp = write_video(tmp_path / "anim.webp", gradient(3), 8)
    with pytest.raises(ValueError, match="cannot decode animated WebP"):
        read_video(webp)
