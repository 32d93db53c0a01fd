"""Bad inputs come back from a real ComfyUI as validation or execution errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from comfy_client import ComfyClient, PromptExecutionError, PromptValidationError
from comfy_server import ComfyServer
from pack_inputs import DENSEPOSE_CLIP, decoded, install


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer, sample_inputs: Path) -> ComfyServer:
    install(comfy_server, sample_inputs)
    (comfy_server.root / "secret.png").write_bytes((comfy_server.input_dir / "reference.png").read_bytes())
    return comfy_server


def reference(image: str = "reference.png", size: int = 64) -> dict:
    return {
        "class_type": "MagicAnimate_LoadReference",
        "inputs": {"image": image, "fit": "pad", "width": size, "height": size},
    }


def video(name: str = DENSEPOSE_CLIP, skip: int = 0) -> dict:
    return {
        "class_type": "MagicAnimate_LoadVideo",
        "inputs": {
            "video": name,
            "frame_load_cap": 16,
            "skip_first_frames": skip,
            "select_every_nth": 1,
            "force_rate": 0.0,
        },
    }


def save(images: list, prefix: str = "errors/clip") -> dict:
    return {
        "class_type": "MagicAnimate_SaveVideo",
        "inputs": {"images": images, "fps": 25.0, "filename_prefix": prefix, "format": "h264-mp4", "quality": 63},
    }


def animate(ref: dict, motion: dict, context_frames: int = 16) -> dict:
    return {
        "1": ref,
        "2": motion,
        "3": {"class_type": "MagicAnimate_ModelLoader", "inputs": {"model": "tiny", "dtype": "fp32"}},
        "4": {
            "class_type": "MagicAnimate_Sampler",
            "inputs": {
                "model": ["3", 0],
                "reference": ["1", 0],
                "motion": ["2", 0],
                "seed": 1,
                "steps": 1,
                "guidance_scale": 7.5,
                "context_frames": context_frames,
                "context_overlap": 4,
            },
        },
        "5": save(["4", 0]),
    }


@pytest.mark.parametrize(
    "name, reason",
    [
        ("missing.png", "'missing.png' does not exist in ComfyUI's input folder"),
        ("../secret.png", "'../secret.png' is outside ComfyUI's input folder"),
        ("/etc/passwd", "'/etc/passwd' is outside ComfyUI's input folder"),
    ],
)
def test_reference_file_errors(server, comfy_client: ComfyClient, name, reason):
    with pytest.raises(PromptValidationError) as error:
        comfy_client.run({"1": reference(name), "2": save(["1", 0])})
    assert error.value.error_types() == {"custom_validation_failed"} and reason in str(error.value)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("gone.mp4", "'gone.mp4' does not exist in ComfyUI's input folder"),
        ("../../../../etc/passwd", "is outside ComfyUI's input folder"),
    ],
)
def test_video_file_errors(server, comfy_client: ComfyClient, name, reason):
    with pytest.raises(PromptValidationError) as error:
        comfy_client.run({"1": video(name), "2": save(["1", 0])})
    assert reason in str(error.value)


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/escape", "a/../../escape"])
def test_save_prefix_cannot_leave_the_output_folder(server, comfy_client: ComfyClient, prefix):
    with pytest.raises(PromptExecutionError, match="outside the output folder"):
        comfy_client.run({"1": video(), "2": save(["1", 0], prefix)})
    assert not list(server.output_dir.parent.glob("escape*")) and not Path("/tmp/escape").exists()


def test_context_frames_above_24_fail_validation(server, comfy_client: ComfyClient):
    with pytest.raises(PromptValidationError) as error:
        comfy_client.run(animate(reference(), video(), context_frames=25))
    assert error.value.error_types() == {"value_bigger_than_max"} and "context_frames" in str(error.value)


def test_motion_of_another_size_is_fitted_to_the_reference(server, comfy_client: ComfyClient):
    """No longer a refusal ('set width=64' could even name a size above the node's 2048 maximum): fitted."""
    result = comfy_client.run(animate(reference(size=48), video()))
    saved = result.files()[0]
    assert decoded(server.output_dir / saved.subfolder / saved.filename)[:3] == (16, 48, 48)


def test_an_empty_batch_is_reported(server, comfy_client: ComfyClient):
    with pytest.raises(PromptExecutionError) as error:
        comfy_client.run(animate(reference(), video(skip=1000)))
    assert error.value.node_type == "MagicAnimate_LoadVideo"
    assert "No frames left in 'densepose.mkv' (20 frames at 25 fps)" in error.value.exception_message
