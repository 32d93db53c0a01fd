"""MagicAnimate_SaveVideo: frames -> a video file in ComfyUI's output folder, with the workflow inside."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..magicanimate_core.media.frames import check_image_range, to_uint8
from ..magicanimate_core.media.video_io import DEFAULT_FORMAT, DEFAULT_QUALITY, FORMATS, write_video
from ..magicanimate_core.validation import check_finite
from . import comfy_adapter as comfy
from .preview import saved_video_ui
from .upstream import source_of


def workflow_metadata(prompt: dict | None, extra_pnginfo: dict | None) -> dict[str, str] | None:
    """Container tags holding the API prompt and the UI workflow as JSON, as ComfyUI's own savers do."""
    if not comfy.metadata_enabled():
        return None
    tags = {} if prompt is None else {"prompt": json.dumps(prompt)}
    tags.update({key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()})
    return tags


class MagicAnimate_SaveVideo:
    DESCRIPTION = (
        "Saves frames as a video in ComfyUI's output folder (H.264 MP4, WebM, GIF, animated WebP or lossless "
        "FFV1 MKV) and previews it. The prompt and workflow are stored in the file unless ComfyUI runs with "
        "--disable-metadata. Existing files are never overwritten: a counter is added to the name."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the written file.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames to save [F, H, W, 3]."}),
                "fps": (
                    "FLOAT",
                    {
                        "default": 25.0,
                        "min": 0.01,
                        "max": 240.0,
                        "step": 0.01,
                        "tooltip": "Frame rate; connect the video loader's fps to keep the source's.",
                    },
                ),
                "filename_prefix": (
                    "STRING",
                    {
                        "default": "MagicAnimate/animation",
                        "tooltip": (
                            "File name start, relative to the output folder; may contain subfolders and %width%, "
                            "%height%. A counter is appended."
                        ),
                    },
                ),
                "format": (
                    list(FORMATS),
                    {
                        "default": DEFAULT_FORMAT,
                        "tooltip": "; ".join(f"{name}: {description}" for name, (*_, description) in FORMATS.items()),
                    },
                ),
                "quality": (
                    "INT",
                    {
                        "default": DEFAULT_QUALITY,
                        "min": 0,
                        "max": 100,
                        "tooltip": ("0 = smallest file, 100 = best picture (ignored by lossless ffv1-mkv)."),
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    def save(
        self,
        images: torch.Tensor,
        fps: float,
        filename_prefix: str,
        format: str,
        quality: int,
        prompt: dict | None = None,
        extra_pnginfo: dict | None = None,
        unique_id: str | None = None,
    ) -> dict:
        if images.shape[0] == 0:
            raise ValueError(
                "images holds no frames, so there is nothing to save: the node connected to Save Video's 'images' "
                "input produced an empty batch; check that node's inputs (e.g. a loader's skip_first_frames)"
            )
        check_image_range(images, source_of("images", "Save Video", prompt, unique_id))
        check_finite("fps", fps, "e.g. 25")
        if "\0" in filename_prefix:
            raise ValueError(
                f"filename_prefix {filename_prefix!r} contains a NUL character (\\0), which no file name can hold; "
                "remove it"
            )
        height, width = images.shape[1:3]
        folder, stem, counter, subfolder = comfy.save_path(filename_prefix, width, height)
        progress = comfy.progress_bar(images.shape[0])

        def on_frame(done: int) -> None:
            """Honour Cancel between frames (write_video then removes its temporary file)."""
            comfy.throw_if_interrupted()
            progress.update_absolute(done)

        frames, metadata, suffix = to_uint8(images), workflow_metadata(prompt, extra_pnginfo), FORMATS[format][0]
        while True:  # the counter is free unless another save took it meanwhile
            try:
                path = write_video(
                    folder / f"{stem}_{counter:05}_{suffix}",
                    frames,
                    fps,
                    format=format,
                    quality=quality,
                    metadata=metadata,
                    on_frame=on_frame,
                )
                break
            except FileExistsError:
                counter += 1
        return {"ui": saved_video_ui(Path(path), subfolder, format, frames, fps), "result": (str(path),)}
