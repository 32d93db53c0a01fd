"""Bad inputs come back from a real ComfyUI as validation or execution errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from comfy_client import ComfyClient, PromptExecutionError, PromptValidationError
from comfy_server import ComfyServer
from pack_inputs import decoded, install
from prompts import reference, sampler_prompt, save, video


@pytest.fixture(scope="module")
def server(comfy_server: ComfyServer, sample_inputs: Path) -> ComfyServer:
    install(comfy_server, sample_inputs)
    (comfy_server.root / "secret.png").write_bytes((comfy_server.input_dir / "reference.png").read_bytes())
    return comfy_server


PREFIX = "errors/clip"


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
        comfy_client.run({"1": reference(name), "2": save(["1", 0], PREFIX)})
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
        comfy_client.run({"1": video(name), "2": save(["1", 0], PREFIX)})
    assert reason in str(error.value)


@pytest.mark.parametrize("prefix", ["../escape", "/tmp/escape", "a/../../escape"])
def test_save_prefix_cannot_leave_the_output_folder(server, comfy_client: ComfyClient, prefix):
    with pytest.raises(PromptExecutionError, match="outside the output folder"):
        comfy_client.run({"1": video(), "2": save(["1", 0], prefix)})
    assert not list(server.output_dir.parent.glob("escape*")) and not Path("/tmp/escape").exists()


def test_context_frames_above_24_fail_validation(server, comfy_client: ComfyClient):
    with pytest.raises(PromptValidationError) as error:
        comfy_client.run(sampler_prompt(reference(), video(), PREFIX, context_frames=25))
    assert error.value.error_types() == {"value_bigger_than_max"} and "context_frames" in str(error.value)


def test_motion_of_another_size_is_fitted_to_the_reference(server, comfy_client: ComfyClient):
    """No longer a refusal ('set width=64' could even name a size above the node's 2048 maximum): fitted."""
    result = comfy_client.run(sampler_prompt(reference(size=48), video(), PREFIX))
    saved = result.files()[0]
    assert decoded(server.output_dir / saved.subfolder / saved.filename)[:3] == (16, 48, 48)


def test_an_empty_batch_is_reported(server, comfy_client: ComfyClient):
    with pytest.raises(PromptExecutionError) as error:
        comfy_client.run(sampler_prompt(reference(), video(skip=1000), PREFIX))
    assert error.value.node_type == "MagicAnimate_LoadVideo"
    assert "No frames left in 'densepose.mkv' (20 frames at 25 fps)" in error.value.exception_message
