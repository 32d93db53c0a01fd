"""ComfyUI API prompt pieces for the e2e tests: the pack's loaders, SaveVideo, and the full sampler graph."""

from __future__ import annotations

from typing import Any

from pack_inputs import DENSEPOSE_CLIP

Node = dict[str, Any]


def reference(image: str = "reference.png", size: int = 64) -> Node:
    """MagicAnimate_LoadReference padding `image` (in ComfyUI's input folder) to size x size."""
    return {
        "class_type": "MagicAnimate_LoadReference",
        "inputs": {"image": image, "fit": "pad", "width": size, "height": size},
    }


def video(name: str = DENSEPOSE_CLIP, cap: int = 16, skip: int = 0) -> Node:
    """MagicAnimate_LoadVideo reading `cap` frames (0: all) of `name` after skipping `skip`."""
    return {
        "class_type": "MagicAnimate_LoadVideo",
        "inputs": {
            "video": name,
            "frame_load_cap": cap,
            "skip_first_frames": skip,
            "select_every_nth": 1,
            "force_rate": 0.0,
        },
    }


def save(images: list, prefix: str, format: str = "h264-mp4", fps: float | list = 25.0) -> Node:
    """MagicAnimate_SaveVideo of the `images` link at `fps` (a number or a link)."""
    return {
        "class_type": "MagicAnimate_SaveVideo",
        "inputs": {"images": images, "fps": fps, "filename_prefix": prefix, "format": format, "quality": 63},
    }


def sampler_prompt(
    ref: Node,
    motion: Node,
    prefix: str,
    *,
    model: str = "tiny",
    seed: int = 1,
    steps: int = 1,
    guidance_scale: float = 7.5,
    context_frames: int = 16,
    fps: float | list = 25.0,
) -> dict[str, Node]:
    """Reference (node 1) and motion (node 2) -> ModelLoader (3, fp32) -> Sampler (4) -> SaveVideo (5)."""
    return {
        "1": ref,
        "2": motion,
        "3": {"class_type": "MagicAnimate_ModelLoader", "inputs": {"model": model, "dtype": "fp32"}},
        "4": {
            "class_type": "MagicAnimate_Sampler",
            "inputs": {
                "model": ["3", 0],
                "reference": ["1", 0],
                "motion": ["2", 0],
                "seed": seed,
                "steps": steps,
                "guidance_scale": guidance_scale,
                "context_frames": context_frames,
                "context_overlap": 4,
            },
        },
        "5": save(["4", 0], prefix, fps=fps),
    }
