"""MagicAnimate_LoadVideo: frames of a video from the input folder, or of a bundled example motion."""

from __future__ import annotations

from pathlib import Path

import torch

from ..magicanimate_core.media.frames import from_uint8
from ..magicanimate_core.media.motion_fit import MOTION_FITS, fit_motion
from ..magicanimate_core.media.video_io import read_video, write_video
from ..magicanimate_core.validation import check_finite
from . import comfy_adapter as comfy
from . import input_files
from .examples import EXAMPLES

# what PyAV decodes (FFmpeg cannot decode animated WebP, so .webp is not offered)
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".gif"})


def video_choices() -> list[str]:
    return comfy.input_files(VIDEO_SUFFIXES) + list(EXAMPLES)


def example_file(name: str) -> Path:
    """The example clip `name`, encoded losslessly once per ComfyUI session into the temp folder."""
    example = EXAMPLES[name]
    path = comfy.temp_directory() / "magicanimate_examples" / f"{example.slug}.mkv"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_video(path, example.frames(), example.fps, format="ffv1-mkv")
        except FileExistsError:  # another run wrote it meanwhile
            pass
    return path


class MagicAnimate_LoadVideo:
    DESCRIPTION = (
        "Loads the frames of a video (mp4, webm, mkv, gif, ...) from ComfyUI's input folder, or one of the "
        "pack's example motions. Use frame_load_cap to keep runs short; MagicAnimate was trained at 25 fps."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "FLOAT", "INT")
    RETURN_NAMES = ("frames", "fps", "frame_count")
    OUTPUT_TOOLTIPS = ("The loaded frames [F, H, W, 3].", "Frame rate of the loaded frames.", "Number of frames.")

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 0, "min": 0, "max": 2048, "step": 8}
        return {
            "required": {
                "video": (
                    video_choices(),
                    {
                        "video_upload": True,
                        "tooltip": "A video in ComfyUI's input folder (upload one here), or a bundled example.",
                    },
                ),
                "frame_load_cap": (
                    "INT",
                    {"default": 0, "min": 0, "max": 100000, "tooltip": ("Load at most this many frames (0 = all).")},
                ),
                "skip_first_frames": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1000000,
                        "tooltip": ("Frames to drop from the start (counted after force_rate)."),
                    },
                ),
                "select_every_nth": (
                    "INT",
                    {"default": 1, "min": 1, "max": 1000, "tooltip": ("Keep one frame in n (1 = every frame).")},
                ),
                "force_rate": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 120.0,
                        "step": 0.01,
                        "tooltip": (
                            "Resample to this frame rate by dropping or repeating frames (0 = keep the source rate; "
                            "25 suits MagicAnimate)."
                        ),
                    },
                ),
            },
            "optional": {
                "width": ("INT", {**size, "tooltip": "Output width, a multiple of 8 (0 = the source's)."}),
                "height": ("INT", {**size, "tooltip": "Output height, a multiple of 8 (0 = the source's)."}),
                "fit": (
                    list(MOTION_FITS),
                    {
                        "default": "pad",
                        "tooltip": (
                            "How to reach width x height: pad = add the frames' background colour on the short "
                            "sides, crop = cut the centre, stretch = distort. Nearest neighbour, so DensePose "
                            "colours stay exact."
                        ),
                    },
                ),
            },
        }

    def load(
        self,
        video: str,
        frame_load_cap: int,
        skip_first_frames: int,
        select_every_nth: int,
        force_rate: float,
        width: int = 0,
        height: int = 0,
        fit: str = "pad",
    ) -> tuple[torch.Tensor, float, int]:
        check_finite("force_rate", force_rate, "0 keeps the source rate")
        path = example_file(video) if video in EXAMPLES else input_files.resolve(video, video_choices())
        info, frames = read_video(
            path,
            frame_load_cap=frame_load_cap,
            skip_first_frames=skip_first_frames,
            select_every_nth=select_every_nth,
            force_rate=force_rate,
        )
        images = from_uint8(frames).to(comfy.intermediate_device())
        if images.shape[0] == 0:
            raise ValueError(
                f"No frames left in '{video}' ({info.source_frame_count} frames at {info.source_fps:g} fps) after "
                f"skip_first_frames={skip_first_frames}, select_every_nth={select_every_nth}, "
                f"force_rate={force_rate:g}; "
                + (
                    "lower skip_first_frames"
                    if skip_first_frames
                    else "the file holds no frame that can be decoded: re-export it (e.g. as H.264 MP4) or pick another"
                )
            )
        images = fit_motion(images, width or images.shape[2], height or images.shape[1], fit)
        return images, float(info.output_fps), int(images.shape[0])

    @classmethod
    def VALIDATE_INPUTS(cls, video: str) -> bool | str:
        if video in EXAMPLES:
            return True
        problem = input_files.check_choice(video, video_choices())
        return True if problem is None else problem

    @classmethod
    def IS_CHANGED(cls, video: str, **_: object) -> str:
        return video if video in EXAMPLES else input_files.file_stamp(comfy.input_directory() / video)
