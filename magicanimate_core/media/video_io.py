"""Video file I/O with PyAV: streamed decoding with VideoHelperSuite-style controls, atomic encoding.

Reading yields uint8 RGB frames [H, W, 3] one at a time, converted by PyAV's default
`to_ndarray(format="rgb24")` (libswscale, BT.601 limited range for YUV sources). Writing accepts
uint8 or float [0, 1] frames and never leaves a partial file behind.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .budget import check_allocation, format_bytes, memory_budget
from .frames import to_uint8

__all__ = ["FORMATS", "DEFAULT_FORMAT", "DEFAULT_QUALITY", "VideoInfo", "probe_video", "read_video", "write_video"]

log = logging.getLogger(__name__)

# name -> (suffix, container, codec, pix_fmt, description)
FORMATS: dict[str, tuple[str, str, str, str, str]] = {
    "h264-mp4": (".mp4", "mp4", "libx264", "yuv420p", "H.264 MP4, plays everywhere; odd sizes padded to even"),
    "vp9-webm": (".webm", "webm", "libvpx-vp9", "yuv420p", "VP9 WebM"),
    "gif": (".gif", "gif", "gif", "pal8", "GIF, a 256-colour palette per frame, loops forever"),
    "webp": (".webp", "webp", "libwebp_anim", "yuv420p", "animated WebP (lossy), loops forever"),
    "ffv1-mkv": (".mkv", "matroska", "ffv1", "bgr0", "FFV1 Matroska, lossless: decodes to the exact pixels"),
}
DEFAULT_FORMAT = "h264-mp4"
# Quality 0..100 (higher is better) maps linearly onto each codec's native scale; 63 gives x264 CRF 19,
# the VideoHelperSuite default.
DEFAULT_QUALITY = 63
_WORST_CRF = {"libx264": 51, "libvpx-vp9": 63}
_EVEN_SIZE_CODECS = {"libx264"}  # yuv420p in H.264 needs even width and height
_MAX_RATE_DENOMINATOR = 1001  # 29.97 -> 2997/100, 30000/1001 stays exact
_Timed = Iterator[tuple[Fraction, av.VideoFrame]]  # decoded frames with their times in seconds
HELD_BYTES_PER_VALUE = 4  # a caller that keeps the frames holds them as a float32 IMAGE batch
_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, and the rate frames come out at after `force_rate` / `select_every_nth`."""

    path: Path
    width: int
    height: int
    source_fps: float
    source_frame_count: int  # estimate from the container; 0 if unknown
    output_fps: float


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's size, rate and frame count from its container, without decoding frames."""
    return _probe(Path(path), force_rate=0.0, select_every_nth=1)


def read_video(
    path: str | os.PathLike[str],
    *,
    frame_load_cap: int = 0,
    skip_first_frames: int = 0,
    select_every_nth: int = 1,
    force_rate: float = 0.0,
    hold_frames: bool = True,
) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Probe `path` now and return its info with a lazy iterator of uint8 RGB frames [H, W, 3].

    As VideoHelperSuite's Load Video: `force_rate` (0 = source rate) first resamples on timestamps,
    each output time taking the first frame at or after it (frames dropped or repeated); then
    `skip_first_frames` drops that many frames, `select_every_nth` keeps frames 0, n, 2n, ... of the
    rest and `frame_load_cap` (0 = all) stops after that many frames. Frames are decoded one at a
    time; the file is opened on the first `next()` and closed when the iterator ends or is closed.

    `hold_frames` (for callers that keep every frame, as a float32 IMAGE batch): the frames the selection
    keeps, by the container's declared count, must fit the memory budget (`media.budget`), checked before
    anything is decoded; a file holding more frames than it declares stops with the same `MemoryBudgetError`
    once they stop fitting. Callers that process one frame at a time pass False.
    """
    _check_int("frame_load_cap", frame_load_cap, 0, "0 loads all frames")
    _check_int("skip_first_frames", skip_first_frames, 0, "0 skips none")
    _check_int("select_every_nth", select_every_nth, 1, "1 keeps every frame")
    rate = _rate(force_rate, "force_rate") if force_rate != 0 else None
    info = _probe(Path(path), force_rate, select_every_nth)
    timed = _decode(info.path)
    if rate is not None:
        timed = _resample(timed, rate)
    frames = itertools.islice((frame for _, frame in timed), skip_first_frames, None, select_every_nth)
    if frame_load_cap:
        frames = itertools.islice(frames, frame_load_cap)
    # copy: for RGB sources to_ndarray is a view of the decoder's frame, shared by repeated frames
    arrays = (frame.to_ndarray(format="rgb24").copy() for frame in frames)
    if not hold_frames:
        return info, arrays
    declared = _selected_count(info, frame_load_cap, skip_first_frames, select_every_nth, force_rate)
    budget = memory_budget()
    _check_frames(info, declared, "(after the frame selection options)", budget)
    return info, _within_budget(info, arrays, declared, budget)


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    format: str | None = None,
    quality: int = DEFAULT_QUALITY,
    metadata: dict[str, str] | None = None,
    overwrite: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Encode RGB frames [H, W, 3|4] (uint8, or float in [0, 1]) to `path`; return the path written.

    `format` is a key of FORMATS; None picks it from the suffix, and a path without a suffix gets the
    format's. `quality` 0..100 (higher is better) maps to CRF for H.264 (0..51) and VP9 (0..63) and is
    the WebP quality; GIF and FFV1 ignore it. Float frames become round(x * 255); alpha is dropped.
    `metadata` become container tags (MP4, WebM, MKV; GIF and WebP have none). Missing folders are
    created. The video is written to a hidden temporary file beside `path` and moved into place only
    once complete, never over an existing file unless `overwrite`: on any exception,
    including one raised by `frames` or `on_frame`, the temporary file is removed and the exception re-raised.
    `on_frame(n)` runs after each encoded frame (n = frames so far): raise there to stop (e.g. a Cancel button).
    """
    target = _resolve_target(Path(path), format, fps, quality, metadata, overwrite)
    first, rest = _first_frame(frames, target.path)
    height, width = first.shape[:2]
    pad = _even_padding(target, height, width)
    target.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        options = _muxer_options(target.container_format)
        with av.open(str(target.temp), "w", format=target.container_format, options=options) as out:
            stream = _open_stream(out, target, width + pad[1], height + pad[0])
            _encode_frames(out, stream, target, itertools.chain([first], rest), pad, on_frame)
        _finalize(target, overwrite)
    except BaseException:
        target.temp.unlink(missing_ok=True)
        raise
    return target.path


@dataclass(frozen=True)
class _Target:
    """Where and how one video is written: the final path, the hidden file beside it, format and options."""

    path: Path
    temp: Path
    container_format: str
    codec: str
    pix_fmt: str
    rate: Fraction
    quality: int
    tags: dict[str, str]


def _resolve_target(
    path: Path, format: str | None, fps: float, quality: int, metadata: dict[str, str] | None, overwrite: bool
) -> _Target:
    """Resolve the format and path and check every argument, before any folder or file exists."""
    path, name = _resolve_format(path, format)
    temp = _temporary_path(path)  # refused here, before any folder or file exists, if the OS could not use it
    _, container_format, codec, pix_fmt, _ = FORMATS[name]
    rate = _rate(fps, "fps")
    _check_int("quality", quality, 0, "0..100, higher is better", high=100)
    tags = dict(metadata or {})
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in tags.items()):
        raise ValueError("metadata keys and values must be strings; serialise other values (e.g. json.dumps)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True or choose another name")
    return _Target(path, temp, container_format, codec, pix_fmt, rate, quality, tags)


def _first_frame(frames: Iterable[np.ndarray], path: Path) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """The first frame, checked (it fixes the size), and the frames after it, checked as they come."""
    pending = iter(frames)
    first = next(pending, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}; the frame sequence is empty")
    first = _as_rgb(first, 0, None)
    size = first.shape[:2]
    return first, (_as_rgb(frame, index, size) for index, frame in enumerate(pending, start=1))


def _even_padding(target: _Target, height: int, width: int) -> tuple[int, int]:
    """Rows and columns of edge padding the codec needs (H.264 yuv420p: even sizes)."""
    pad = (height % 2, width % 2) if target.codec in _EVEN_SIZE_CODECS else (0, 0)
    if any(pad):
        log.warning(
            "%s: %dx%d padded to %dx%d (H.264 needs even sizes)",
            target.path,
            width,
            height,
            width + pad[1],
            height + pad[0],
        )
    return pad


def _open_stream(out: av.container.OutputContainer, target: _Target, width: int, height: int) -> av.VideoStream:
    """The container's tags and its one video stream, configured for the target codec and rate."""
    out.metadata.update(target.tags)
    stream = out.add_stream(target.codec, rate=target.rate, options=_encoder_options(target.codec, target.quality))
    stream.width, stream.height, stream.pix_fmt = width, height, target.pix_fmt
    stream.codec_context.time_base = 1 / target.rate
    return stream


def _encode_frames(
    out: av.container.OutputContainer,
    stream: av.VideoStream,
    target: _Target,
    images: Iterable[np.ndarray],
    pad: tuple[int, int],
    on_frame: Callable[[int], None] | None,
) -> None:
    """Encode and mux every frame, then flush the encoder; `on_frame(n)` after each one."""
    for index, image in enumerate(images):
        if any(pad):
            image = np.pad(image, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
        frame = _gif_frame(image) if target.codec == "gif" else av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = index, 1 / target.rate
        out.mux(stream.encode(frame))
        if on_frame is not None:
            on_frame(index + 1)
    out.mux(stream.encode())


def _finalize(target: _Target, overwrite: bool) -> None:
    """Move the complete temporary file into place, never over a file that appeared meanwhile."""
    if target.path.exists() and not overwrite:
        raise FileExistsError(f"{target.path} appeared while writing; not overwritten (pass overwrite=True)")
    os.replace(target.temp, target.path)


def _temporary_path(path: Path) -> Path:
    """The hidden file beside `path` the video is written to (the muxer creates it with umask modes), checked.

    FFmpeg would cut a name at a NUL character and write elsewhere, where the clean-up could not find it.
    """
    if "\0" in str(path):
        raise ValueError(f"{str(path)!r}: a file name cannot contain a NUL character (\\0); remove it from the name")
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    excess = len(os.fsencode(temp.name)) - _NAME_MAX
    if excess > 0:
        raise ValueError(
            f"{path.name!r}: the file name is too long for the file system; shorten it by {excess} characters"
        )
    return temp


def _selected_count(
    info: VideoInfo, frame_load_cap: int, skip_first_frames: int, select_every_nth: int, force_rate: float
) -> int:
    """Frames the selection options keep, by the container's declared frame count (0 if it declares none)."""
    count = info.source_frame_count
    if force_rate and info.source_fps:
        count = math.ceil(count * force_rate / info.source_fps)
    count = math.ceil(max(0, count - skip_first_frames) / select_every_nth)
    return min(count, frame_load_cap) if frame_load_cap else count


def _fewer_frames(info: VideoInfo, fitting: int) -> str:
    frame = format_bytes(info.width * info.height * 3 * HELD_BYTES_PER_VALUE)
    if fitting < 1:
        return f"Not even one {info.width}x{info.height} frame ({frame}) fits: scale the video down first."
    return (
        f"At most {fitting} frames of {info.width}x{info.height} ({frame} each) fit: set frame_load_cap to "
        f"{fitting} or less, raise select_every_nth, or scale the video down first."
    )


def _check_frames(info: VideoInfo, count: int, context: str, budget: tuple[int, str]) -> None:
    frame_bytes = info.width * info.height * 3 * HELD_BYTES_PER_VALUE
    check_allocation(
        f"{info.path}: {count} frames of {info.width}x{info.height} {context}",
        count * frame_bytes,
        lambda limit: _fewer_frames(info, limit // frame_bytes),
        budget,
    )


def _within_budget(
    info: VideoInfo, arrays: Iterator[np.ndarray], declared: int, budget: tuple[int, str]
) -> Iterator[np.ndarray]:
    """`arrays`, stopped with `MemoryBudgetError` once a file holding more frames than declared outgrows `budget`."""
    try:
        for index, array in enumerate(arrays, start=1):
            if index > declared:
                _check_frames(info, index, f"(more than its header declares: {info.source_frame_count})", budget)
            yield array
    finally:
        arrays.close()


def _probe(path: Path, force_rate: float, select_every_nth: int) -> VideoInfo:
    with _open(path) as container:
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or stream.guessed_rate or 0)
        if stream.frames:
            count = stream.frames
        elif stream.duration and stream.time_base:
            count = round(stream.duration * stream.time_base * source_fps)
        else:
            count = round((container.duration or 0) / av.time_base * source_fps)
        return VideoInfo(
            path=path,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            source_fps=source_fps,
            source_frame_count=count,
            output_fps=(force_rate or source_fps) / select_every_nth,
        )


def _open(path: Path) -> av.container.InputContainer:
    """Open `path` for reading, turning PyAV's errors into ones that name the file and the fix."""
    if not path.is_file():
        problem = "is a folder, not a video file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"video file {path} {problem}; check the path")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise ValueError(
            f"{path} is not a readable video ({exc}); the file is corrupt, truncated or not a "
            "video: re-export it as MP4 (H.264) or WebM"
        ) from exc
    streams = container.streams.video
    if not streams or not (streams[0].codec_context.width and streams[0].codec_context.height):
        container.close()
        if not streams:
            raise ValueError(f"{path} has no video stream (audio or data only); choose a file with video")
        hint = " (FFmpeg cannot decode animated WebP)" if streams[0].codec_context.name == "webp" else ""
        raise ValueError(f"{path}: FFmpeg cannot read the frame size of its video{hint}; convert it to MP4 or GIF")
    return container


def _decode(path: Path) -> _Timed:
    """Decoded frames of the first video stream, in presentation order, with their times in seconds."""
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = 1 / Fraction(stream.average_rate or stream.guessed_rate or 1)
        time, decoded = -step, 0
        try:
            for frame in container.decode(stream):
                time = frame.pts * frame.time_base if frame.pts is not None and frame.time_base else time + step
                decoded += 1
                yield time, frame
        except av.error.FFmpegError as exc:
            raise ValueError(
                f"{path}: decoding failed after {decoded} frames ({exc}); the file is corrupt or "
                "truncated: re-export it"
            ) from exc


def _resample(timed: _Timed, rate: Fraction) -> _Timed:
    """Frames at times t0 + k / rate, each the first source frame at or after that time."""
    next_time: Fraction | None = None
    for time, frame in timed:
        next_time = time if next_time is None else next_time
        while next_time <= time:
            yield next_time, frame
            next_time += 1 / rate


def _rate(fps: float, name: str) -> Fraction:
    """A frame rate as a fraction (29.97 -> 2997/100), checked to be a positive finite number."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < float("inf"):
        raise ValueError(f"{name} must be a positive number of frames per second, got {fps!r}")
    return Fraction(float(fps)).limit_denominator(_MAX_RATE_DENOMINATOR)


def _check_int(name: str, value: int, low: int, meaning: str, high: int | None = None) -> None:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not (is_int and value >= low and (high is None or value <= high)):
        bounds = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be an integer {bounds} ({meaning}), got {value!r}")


def _resolve_format(path: Path, name: str | None) -> tuple[Path, str]:
    by_suffix = {suffix: key for key, (suffix, *_) in FORMATS.items()}
    if name is None:
        name = by_suffix.get(path.suffix.lower()) or ("" if path.suffix else DEFAULT_FORMAT)
        if not name:
            raise ValueError(
                f"{path}: unknown video suffix {path.suffix!r}; use one of {sorted(by_suffix)} or pass format="
            )
    if name not in FORMATS:
        raise ValueError(f"unknown video format {name!r}; choose one of {sorted(FORMATS)}")
    suffix = FORMATS[name][0]
    if not path.suffix:
        return path.with_name(path.name + suffix), name
    if path.suffix.lower() != suffix:
        raise ValueError(f"{path}: format {name!r} writes {suffix} files; change the suffix or the format")
    return path, name


def _muxer_options(container_format: str) -> dict[str, str]:
    if container_format == "mp4":
        return {"movflags": "use_metadata_tags"}
    if container_format == "webp":
        return {"loop": "0"}  # the WebP muxer plays once by default; 0 loops forever like GIF
    return {}


def _encoder_options(codec: str, quality: int) -> dict[str, str]:
    if codec in _WORST_CRF:
        crf = round(_WORST_CRF[codec] * (100 - quality) / 100)
        # b=0: constant quality for VP9 (FFmpeg 8 defaults to it; older builds default to a 200k target)
        return {"crf": str(crf), "b": "0"} if codec == "libvpx-vp9" else {"crf": str(crf)}
    if codec == "libwebp_anim":
        return {"quality": str(quality)}
    return {}


def _gif_frame(image: np.ndarray) -> av.VideoFrame:
    """A pal8 frame with its own median-cut palette (FFmpeg's gif encoder only has a fixed one for RGB)."""
    quantized = Image.fromarray(image).quantize(256, method=Image.Quantize.MEDIANCUT)
    rgb = np.zeros((256, 3), np.uint8)
    used = np.asarray(quantized.getpalette(), np.uint8).reshape(-1, 3)
    rgb[: len(used)] = used
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)  # PyAV wants ARGB rows
    return av.VideoFrame.from_ndarray((np.asarray(quantized), argb), format="pal8")


def _as_rgb(frame: np.ndarray, index: int, size: tuple[int, int] | None) -> np.ndarray:
    """Frame `index` as contiguous uint8 [H, W, 3], checked against the first frame's (H, W)."""
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(
            f"frame {index}: shape {array.shape} is not [H, W, 3] (RGB) or [H, W, 4] (RGBA); "
            "pass one frame at a time, channels last"
        )
    if size is not None and array.shape[:2] != size:
        raise ValueError(
            f"frame {index}: size {array.shape[1]}x{array.shape[0]} differs from frame 0's "
            f"{size[1]}x{size[0]}; resize all frames to one size"
        )
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if not 0.0 <= low <= high <= 1.0:  # also false for NaN
            raise ValueError(
                f"frame {index}: float values must be in [0, 1], got min {low} max {high}; "
                "clamp them, or divide by 255 if they are 0..255"
            )
        array = to_uint8(array)
    elif array.dtype != np.uint8:
        raise ValueError(f"frame {index}: dtype {array.dtype} is not supported; pass uint8 or float in [0, 1]")
    return np.ascontiguousarray(array[..., :3])
