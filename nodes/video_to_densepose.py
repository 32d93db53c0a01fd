"""MagicAnimate_VideoToDensePose: ordinary video frames -> DensePose motion frames for the sampler."""

from __future__ import annotations

from pathlib import Path

import torch

from ..densepose_node.backends import BACKENDS, Estimator, load_estimator
from ..densepose_node.extract import FITS, extract_densepose
from ..densepose_node.render import COLORMAPS
from ..magicanimate_core.media.fit import square_label_fit
from ..magicanimate_core.media.frames import check_image_range, from_uint8, to_uint8
from ..magicanimate_core.validation import check_finite
from . import comfy_adapter as comfy
from .upstream import source_of

WEIGHTS_FOLDER = "densepose"
WEIGHTS_EXTENSIONS = frozenset({".pkl", ".safetensors"})

# one estimator kept between runs, keyed by backend, weights file (path, size, mtime) and device
_estimators: dict[tuple, Estimator] = {}


def weights_choices() -> list[str]:
    """Weights files in models/densepose, without the .safetensors a .pkl was converted to (a cache)."""
    files = comfy.model_files(WEIGHTS_FOLDER)
    present = set(files)
    return [f for f in files if not (f.endswith(".safetensors") and f[: -len(".safetensors")] + ".pkl" in present)]


def cached_estimator(backend: str, weights: Path, device: torch.device) -> Estimator:
    """The estimator for `weights`, built once and reused while the file keeps its size and mtime."""
    stat = weights.stat()
    key = (backend, str(weights), stat.st_size, stat.st_mtime_ns, str(device))
    if key not in _estimators:
        _estimators.clear()  # one estimator at a time
        _estimators[key] = load_estimator(backend, weights, device=device)
    return _estimators[key]


class MagicAnimate_VideoToDensePose:
    DESCRIPTION = (
        "Turns video frames of a person into DensePose frames (body parts coloured as MagicAnimate was "
        "trained on: viridis on a purple background). Uses the built-in DensePose R-CNN, or detectron2 when "
        "installed. Weights go in models/densepose."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "extract"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("densepose",)
    OUTPUT_TOOLTIPS = ("DensePose frames [F, H, W, 3], one per input frame.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Video frames [F, H, W, 3] from any loader."}),
                "backend": (
                    list(BACKENDS),
                    {
                        "default": "auto",
                        "tooltip": (
                            "auto = detectron2 when installed, else builtin; builtin = the pack's own PyTorch "
                            "DensePose R-CNN; detectron2 = the reference implementation (must be installed)."
                        ),
                    },
                ),
                "weights": (
                    weights_choices(),
                    {"tooltip": ("DensePose R-CNN weights in models/densepose (e.g. model_final_162be9.pkl).")},
                ),
                "score_threshold": (
                    "FLOAT",
                    {
                        "default": 0.05,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": (
                            "Minimum person detection score; 0.05 matches vid2densepose, 0.5-0.8 removes ghosts."
                        ),
                    },
                ),
                "max_people": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 100,
                        "tooltip": ("Keep only the highest-scoring people (0 = all)."),
                    },
                ),
                "output_fit": (
                    list(FITS),
                    {
                        "default": "source",
                        "tooltip": (
                            "source = keep the video's size; crop / pad = square output_size frames (centre crop, "
                            "or background added on the short sides)."
                        ),
                    },
                ),
                "output_size": (
                    "INT",
                    {
                        "default": 512,
                        "min": 8,
                        "max": 2048,
                        "step": 8,
                        "tooltip": ("Side of the square output for crop / pad (ignored for source)."),
                    },
                ),
                "colormap": (
                    list(COLORMAPS),
                    {
                        "default": "viridis",
                        "tooltip": (
                            "viridis on purple = MagicAnimate; parula on black = CivitAI DensePose ControlNets."
                        ),
                    },
                ),
            },
            "optional": {
                "temporal_smoothing": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Majority vote of each pixel's part over 3 frames: less DensePose flicker.",
                    },
                ),
            },
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    def extract(
        self,
        images: torch.Tensor,
        backend: str,
        weights: str,
        score_threshold: float,
        max_people: int,
        output_fit: str,
        output_size: int,
        colormap: str,
        temporal_smoothing: bool = False,
        prompt: dict | None = None,
        unique_id: str | None = None,
    ) -> tuple[torch.Tensor]:
        if images.shape[0] == 0:
            raise ValueError(
                "images holds no frames, so there is nothing to convert to DensePose: the node connected to the "
                "'images' input produced an empty batch; check that node's inputs (e.g. a loader's skip_first_frames)"
            )
        check_image_range(images, source_of("images", "Video To DensePose", prompt, unique_id))
        check_finite("score_threshold", score_threshold, "0.05 as vid2densepose")
        estimator = cached_estimator(backend, comfy.model_file(WEIGHTS_FOLDER, weights), comfy.torch_device())
        progress = comfy.progress_bar(images.shape[0])

        def on_frame(done: int) -> None:
            comfy.throw_if_interrupted()
            progress.update_absolute(done)

        frames = extract_densepose(
            to_uint8(images),
            estimator,
            colormap=colormap,
            score_threshold=score_threshold,
            max_people=max_people,
            fit_canvas=square_label_fit(output_fit, output_size),
            smooth=temporal_smoothing,
            progress=on_frame,
        )
        return (from_uint8(frames).to(comfy.intermediate_device()),)
