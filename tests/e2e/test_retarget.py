"""Retarget Motion to Reference in a real ComfyUI: with a given reference DensePose (checked against the
library, frame for frame) and with the reference estimated by the tiny DensePose R-CNN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from comfy_client import ComfyClient, PromptExecutionError
from comfy_server import ComfyServer
from pack_inputs import DENSEPOSE_CLIP, install
from PIL import Image

from bench.bodies import BUILDS, Pose, draw
from densepose_node.labels import labels_from_rgb
from densepose_node.render import colorize
from densepose_node.retarget import retarget_labels
from magicanimate_core.media.video_io import read_video

SIZE = 64
FRAMES = 8


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer, sample_inputs: Path) -> ComfyServer:
    install(comfy_server, sample_inputs)
    reference = draw(replace(BUILDS["long-limbed"], unit=50.0), Pose((30.0, 30.0)), (SIZE, SIZE))
    Image.fromarray(colorize(reference)).save(comfy_server.input_dir / "reference_densepose.png")
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(comfy_server.input_dir / "grey.png")
    return comfy_server


def prompt(mode: str, photo: str = "reference.png", with_densepose: bool = False) -> dict:
    def picture(name: str) -> dict:
        return {
            "class_type": "MagicAnimate_LoadReference",
            "inputs": {"image": name, "fit": "pad", "width": SIZE, "height": SIZE},
        }

    retarget = {"motion": ["2", 0], "reference": ["1", 0], "mode": mode, "weights": "model_final_162be9.pkl"}
    nodes = {
        "1": picture(photo),
        "2": {
            "class_type": "MagicAnimate_LoadVideo",
            "inputs": {
                "video": DENSEPOSE_CLIP,
                "frame_load_cap": FRAMES,
                "skip_first_frames": 0,
                "select_every_nth": 1,
                "force_rate": 0.0,
            },
        },
        "3": {"class_type": "MagicAnimate_RetargetMotion", "inputs": retarget},
        "4": {
            "class_type": "MagicAnimate_SaveVideo",
            "inputs": {
                "images": ["3", 0],
                "fps": 25.0,
                "filename_prefix": f"retarget/{mode}",
                "format": "ffv1-mkv",
                "quality": 63,
            },
        },
    }
    if with_densepose:
        nodes["5"] = picture("reference_densepose.png")
        retarget["reference_densepose"] = ["5", 0]
    return nodes


def saved(server: ComfyServer, result) -> np.ndarray:
    """The lossless frames node 4 saved (the UI is shown an H.264 preview named after the file)."""
    (preview,) = result.files("4")
    _, frames = read_video(server.output_dir / "retarget" / (Path(preview.filename).stem + ".mkv"))
    return np.stack(list(frames))


@pytest.mark.parametrize("mode", ["parts", "global"])
def test_with_reference_densepose_matches_the_library(server, comfy_client: ComfyClient, mode):
    out = saved(server, comfy_client.run(prompt(mode, with_densepose=True)))
    _, frames = read_video(server.input_dir / DENSEPOSE_CLIP, frame_load_cap=FRAMES)
    motion = labels_from_rgb(np.stack(list(frames)))
    reference = labels_from_rgb(np.asarray(Image.open(server.input_dir / "reference_densepose.png")))
    assert np.array_equal(out, colorize(retarget_labels(reference, motion, mode)))
    assert not np.array_equal(out, colorize(motion))


def test_reference_estimated_with_the_tiny_weights(server, comfy_client: ComfyClient):
    out = saved(server, comfy_client.run(prompt("parts")))
    assert out.shape == (FRAMES, SIZE, SIZE, 3)


def test_no_person_in_the_reference_names_the_fix(server, comfy_client: ComfyClient):
    with pytest.raises(PromptExecutionError, match="no person found in the reference.*reference_densepose"):
        comfy_client.run(prompt("parts", photo="grey.png"))
