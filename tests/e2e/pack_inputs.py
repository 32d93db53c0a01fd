"""Test inputs for the pack's workflows in a real server: tiny models and clips under the shipped names.

The shipped workflows name `models/magicanimate/default`, `models/densepose/model_final_162be9.pkl`,
`input/reference.png` and `input/dance.mp4`; here those are the golden tiny checkpoints and 64x64 clips,
and `shrink` lowers sizes, frame counts and steps so a CPU run takes seconds.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from comfy_server import ComfyServer

from magicanimate_core.media.video_io import read_video, write_video

PACK_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = PACK_ROOT / "workflows"
SIZE, FRAMES, STEPS = 64, 18, 2
DENSEPOSE_CLIP = "densepose.mkv"  # 20 DensePose frames (golden case B), lossless, 25 fps
SMALL: dict[str, dict[str, Any]] = {
    "MagicAnimate_LoadReference": {"width": SIZE, "height": SIZE},
    "MagicAnimate_LoadVideo": {"frame_load_cap": FRAMES},
    "MagicAnimate_VideoToDensePose": {"output_size": SIZE},
    "MagicAnimate_Sampler": {"steps": STEPS},
}


def install(server: ComfyServer, golden: Path) -> None:
    """Models and input files the shipped workflows (and the other e2e tests) refer to."""
    models = server.models_dir
    for name in ("default", "tiny"):
        link = models / "magicanimate" / name
        if not link.exists():
            link.symlink_to(golden / "tiny_checkpoints" / "pretrained_models", target_is_directory=True)
    weights = models / "densepose" / "model_final_162be9.pkl"
    if not weights.exists():
        weights.symlink_to(golden / "densepose" / "weights" / "tiny_densepose.pkl")
    inputs = server.input_dir
    shutil.copyfile(golden / "case_A" / "reference.png", inputs / "reference.png")
    shutil.copyfile(golden / "densepose" / "video" / "synthetic_walk_256.mp4", inputs / "dance.mp4")
    if not (inputs / DENSEPOSE_CLIP).exists():
        write_video(inputs / DENSEPOSE_CLIP, np.load(golden / "case_B" / "control.npy"), 25, format="ffv1-mkv")


def api_workflow(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())


def shrink(prompt: dict[str, Any]) -> dict[str, Any]:
    """A copy of `prompt` at test size; bundled 512x512 example motions become the 64x64 DensePose clip."""
    small = copy.deepcopy(prompt)
    for node in small.values():
        node["inputs"].update(SMALL.get(node["class_type"], {}))
        if node["class_type"] == "MagicAnimate_LoadVideo" and node["inputs"]["video"].startswith("example:"):
            node["inputs"]["video"] = DENSEPOSE_CLIP
    return small


def decoded(path: Path) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) of a saved video, by decoding every frame."""
    info, frames = read_video(path)
    return sum(1 for _ in frames), info.width, info.height, info.source_fps
