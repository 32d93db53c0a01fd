"""The shipped example workflows in a real ComfyUI: UI files convert to the API files, and every API file
runs end to end on the generated tiny checkpoints, writing videos that decode to the expected clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comfy_client import ComfyClient
from comfy_server import ComfyServer
from pack_inputs import FRAMES, SIZE, WORKFLOWS, api_workflow, decoded, install, shrink
from ui_to_api import convert

NAMES = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
EXAMPLE = "example: synthetic walk (DensePose)"
SAVERS = ("MagicAnimate_SaveVideo", "SaveVideo")


def skip_without_core_nodes(name: str, object_info: dict) -> None:
    """Workflows built on core nodes (the VIDEO type, ComfyUI >= 0.3.31) skip on ComfyUIs that lack them."""
    missing = sorted({node["class_type"] for node in api_workflow(name).values()} - set(object_info))
    if missing and all(not key.startswith("MagicAnimate_") for key in missing):
        pytest.skip(f"{name} needs core nodes this ComfyUI lacks: {', '.join(missing)}")


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer, sample_inputs: Path) -> ComfyServer:
    install(comfy_server, sample_inputs)
    return comfy_server


def test_the_three_documented_workflows_ship():
    assert {"animate_densepose_video", "animate_ordinary_video", "video_to_densepose"} <= set(NAMES)
    assert sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_converts_to_the_shipped_api_prompt(name, comfy_client: ComfyClient):
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    assert ui["version"] == 0.4
    assert all(
        node["properties"].get("cnr_id")
        == ("magicanimate" if node["type"].startswith("MagicAnimate_") else "comfy-core")
        for node in ui["nodes"]
    )
    object_info = comfy_client.object_info()
    skip_without_core_nodes(name, object_info)
    assert convert(ui, object_info) == api_workflow(name)


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_runs_and_writes_videos(name, server: ComfyServer, comfy_client: ComfyClient, tmp_path):
    skip_without_core_nodes(name, comfy_client.object_info())
    prompt = shrink(api_workflow(name))
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    result = comfy_client.run(prompt, workflow=ui)
    savers = [node_id for node_id, node in prompt.items() if node["class_type"] in SAVERS]
    assert sorted(result.outputs) == sorted(savers)
    for node_id in savers:
        (file,) = result.files(node_id)
        assert file.type == "output" and file.filename.endswith("_.mp4")
        path = tmp_path / file.filename
        path.write_bytes(comfy_client.view(file))
        frames, width, height, fps = decoded(path)
        loader = next(
            node["inputs"] for node in prompt.values() if node["class_type"] in ("MagicAnimate_LoadVideo", "LoadVideo")
        )
        expected_frames = 12 if loader.get("video", loader.get("file")) == "dance.mp4" else FRAMES  # dance.mp4: 12
        assert (frames, width, height) == (expected_frames, SIZE, SIZE)
        assert fps == pytest.approx(25.0)


def test_bundled_example_motion_loads_in_the_server(server: ComfyServer, comfy_client: ComfyClient, tmp_path):
    prompt = {
        "1": {
            "class_type": "MagicAnimate_LoadVideo",
            "inputs": {
                "video": EXAMPLE,
                "frame_load_cap": 5,
                "skip_first_frames": 0,
                "select_every_nth": 2,
                "force_rate": 0.0,
            },
        },
        "2": {
            "class_type": "MagicAnimate_SaveVideo",
            "inputs": {
                "images": ["1", 0],
                "fps": ["1", 1],
                "filename_prefix": "example/walk",
                "format": "ffv1-mkv",
                "quality": 63,
            },
        },
    }
    (file,) = comfy_client.run(prompt).files("2")
    path = tmp_path / file.filename
    path.write_bytes(comfy_client.view(file))
    assert decoded(path) == (5, 512, 512, 12.5)
    assert (server.temp_dir / "magicanimate_examples" / "synthetic_walk.mkv").is_file()
