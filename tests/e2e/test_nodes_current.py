"""The nodes as a current ComfyUI user meets them: any motion size, the options node, the VIDEO type, portraits.

Runs the shipped workflows on the generated tiny checkpoints; workflows made of core VIDEO nodes skip on
ComfyUIs that lack them (the 2024 floor).
"""

from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from comfy_client import ComfyClient
from comfy_server import ComfyServer
from pack_inputs import DENSEPOSE_CLIP, api_workflow, install, shrink
from PIL import Image

from magicanimate_core.media.video_io import read_video

ANIMATIONS = ("animate_densepose_video", "animate_ordinary_video", "animate_video_with_audio")
SAVERS = ("MagicAnimate_SaveVideo", "SaveVideo")
SMALL, LARGE = 64, 512


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer, sample_inputs: Path) -> ComfyServer:
    install(comfy_server, sample_inputs)
    return comfy_server


def needs_core_nodes(prompt: dict[str, Any], client: ComfyClient) -> None:
    missing = sorted({node["class_type"] for node in prompt.values()} - set(client.object_info()))
    if missing:
        pytest.skip(f"this ComfyUI lacks {', '.join(missing)} (core VIDEO nodes came with ComfyUI 0.3.31)")


def light(prompt: dict[str, Any], frames: int = 4) -> dict[str, Any]:
    """The test-size prompt with one step and few frames."""
    small = shrink(prompt)
    for node in small.values():
        if node["class_type"] == "MagicAnimate_Sampler":
            node["inputs"]["steps"] = 1
        if node["class_type"] == "MagicAnimate_LoadVideo":
            node["inputs"]["frame_load_cap"] = frames
    return small


def nodes_of(prompt: dict[str, Any], class_type: str) -> list[dict[str, Any]]:
    return [node["inputs"] for node in prompt.values() if node["class_type"] == class_type]


def upstream(prompt: dict[str, Any], node_id: str) -> set[str]:
    """Class types of every node `node_id` depends on."""
    found, todo = set(), [node_id]
    while todo:
        for value in prompt[todo.pop()]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in prompt:
                found.add(prompt[value[0]]["class_type"])
                todo.append(value[0])
    return found


def saved_frames(client: ComfyClient, result, node_id: str, folder: Path) -> tuple[np.ndarray, Any]:
    (file,) = [f for f in result.files(node_id) if f.type == "output"] or result.files(node_id)
    path = folder / f"{node_id}_{file.filename}"
    path.write_bytes(client.view(file))
    info, frames = read_video(path)
    return np.stack(list(frames)), info


@pytest.mark.parametrize("direction", ["small_motion", "large_motion"])
@pytest.mark.parametrize("name", ANIMATIONS)
def test_shipped_workflows_run_with_a_motion_of_another_size(
    name, direction, server: ComfyServer, comfy_client: ComfyClient, tmp_path
):
    prompt = light(api_workflow(name))
    needs_core_nodes(prompt, comfy_client)
    reference = LARGE if direction == "small_motion" else SMALL  # 512x512 reference + 64x64 motion, or reverse
    for inputs in nodes_of(prompt, "MagicAnimate_LoadReference"):
        inputs.update(width=reference, height=reference)
    motion = SMALL if direction == "small_motion" else LARGE
    for inputs in nodes_of(prompt, "MagicAnimate_VideoToDensePose"):
        inputs["output_size"] = motion
    for inputs in nodes_of(prompt, "MagicAnimate_LoadVideo"):
        if inputs["video"] == DENSEPOSE_CLIP and motion == LARGE:  # 64x64 clip made 512x512 by Load Video
            inputs.update(width=LARGE, height=LARGE, fit="pad")
    result = comfy_client.run(prompt)
    animated = [
        node_id
        for node_id, node in prompt.items()
        if node["class_type"] in SAVERS and "MagicAnimate_Sampler" in upstream(prompt, node_id)
    ]
    assert animated
    for node_id in animated:
        frames, _ = saved_frames(comfy_client, result, node_id, tmp_path)
        assert frames.shape[1:3] == (reference, reference)


def options_prompt(**options: Any) -> dict[str, Any]:
    prompt = light(api_workflow("animate_densepose_video"), frames=6)
    prompt["4"]["inputs"].update(steps=2, seed=5)
    prompt["6"]["inputs"].update(options)
    prompt["5"]["inputs"]["format"] = "ffv1-mkv"  # lossless: compares the sampler's pixels
    return prompt


def test_options_node_changes_the_output_only_where_it_should(server: ComfyServer, comfy_client: ComfyClient, tmp_path):
    runs = {
        "default": {},
        "dpmpp": {"scheduler": "dpmpp"},
        "levers": {"sequential_cfg": True, "offload": True, "decode_batch_size": 1, "keep_model_loaded": False},
    }
    frames = {}
    for label, options in runs.items():
        before = set(server.output_dir.rglob("*.mkv"))
        comfy_client.run(options_prompt(**options))
        (saved,) = set(server.output_dir.rglob("*.mkv")) - before  # the lossless file (the node shows an H.264 copy)
        frames[label] = np.stack(list(read_video(saved)[1]))
    default = frames["default"].astype(int)
    assert np.abs(frames["levers"].astype(int) - default).max() <= 1  # memory levers: within 1/255
    assert np.abs(frames["dpmpp"].astype(int) - default).max() > 8  # another scheduler: another animation
    assert frames["dpmpp"].shape == default.shape


def clip_with_audio(path: Path, frames: int, fps: int, size: int) -> Path:
    """A DensePose-like H.264 clip with an AAC sine tone, at an fps other than MagicAnimate's 25."""
    palette = np.array([[68, 1, 84], [253, 231, 37]], np.uint8)
    rng = np.random.default_rng(4)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size, size, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for index in range(frames):
            picture = palette[rng.integers(0, 2, (size // 8, size // 8))].repeat(8, 0).repeat(8, 1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
        samples = int(44100 * frames / fps)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


def test_video_type_workflow_keeps_fps_and_audio(server: ComfyServer, comfy_client: ComfyClient, tmp_path):
    prompt = light(api_workflow("animate_video_with_audio"))
    needs_core_nodes(prompt, comfy_client)
    clip_with_audio(server.input_dir / "tone_dance.mp4", frames=10, fps=20, size=64)
    nodes_of(prompt, "LoadVideo")[0]["file"] = "tone_dance.mp4"
    result = comfy_client.run(prompt)
    (saver,) = [node_id for node_id, node in prompt.items() if node["class_type"] == "SaveVideo"]
    (file,) = result.files(saver)
    path = tmp_path / file.filename
    path.write_bytes(comfy_client.view(file))
    assert path.suffix == ".mp4"
    with av.open(str(path)) as container:
        assert container.streams.audio, "the source's audio was dropped"
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(20.0)
        assert (stream.codec_context.width, stream.codec_context.height) == (SMALL, SMALL)
        assert sum(1 for _ in container.decode(stream)) == 10  # playable: every frame decodes


def test_non_square_reference_comes_out_in_its_own_aspect_ratio(
    server: ComfyServer, comfy_client: ComfyClient, tmp_path
):
    picture = np.random.default_rng(2).integers(0, 256, (96, 54, 3), dtype=np.uint8)  # 9:16 portrait
    Image.fromarray(picture).save(server.input_dir / "portrait.png")
    prompt = light(api_workflow("animate_densepose_video"))
    nodes_of(prompt, "MagicAnimate_LoadReference")[0]["image"] = "portrait.png"
    result = comfy_client.run(prompt)
    frames, _ = saved_frames(comfy_client, result, "5", tmp_path)
    assert frames.shape[1:3] == (64, 36)  # padded to 64x64 for the model, cropped back to 9:16


def test_lossless_saves_get_a_preview_the_browser_plays(server: ComfyServer, comfy_client: ComfyClient, tmp_path):
    prompt = copy.deepcopy(light(api_workflow("video_to_densepose")))
    for inputs in nodes_of(prompt, "MagicAnimate_SaveVideo"):
        inputs["format"] = "ffv1-mkv"
    result = comfy_client.run(prompt)
    (saver,) = [node_id for node_id, node in prompt.items() if node["class_type"] == "MagicAnimate_SaveVideo"]
    (shown,) = result.files(saver)
    assert shown.type == "temp" and shown.filename.endswith(".mp4")
    path = tmp_path / shown.filename
    path.write_bytes(comfy_client.view(shown))
    info, frames = read_video(path)
    assert len(list(frames)) == 4 and (info.width, info.height) == (SMALL, SMALL)
    assert list((server.output_dir / "MagicAnimate").glob("densepose_*_.mkv"))  # the lossless file itself
