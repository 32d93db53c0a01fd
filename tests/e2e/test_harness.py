"""The end-to-end harness itself, proven on throw-away packs (independent of the MagicAnimate nodes).

A second server mounts two tiny V1 packs written to a temporary folder: one that works (a failing node, a
slow interruptible node) and one that cannot import. This shows that the client reports validation and
runtime errors with the server's messages, that /view and /interrupt work, and that the import-failure
check used by test_pack_loads.py does detect a broken pack. Also: which ComfyUI the harness picks
($COMFYUI_DIR, COMFYUI_FLOOR=1, the 0.3.64 archive in ../shared, the 2024 floor) and that the server runs it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import comfyui_setup
import pytest
from comfy_client import ComfyClient, PromptExecutionError, PromptInterrupted, PromptValidationError
from comfy_server import ComfyServer, import_failures

PROBE_PACK = """
import time

import comfy.model_management


class HarnessProbe_Fail:
    CATEGORY = "harness"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "message": ("STRING", {"default": "boom"})}}

    def run(self, images, message):
        raise ValueError(f"probe failure: {message}")


class HarnessProbe_Slow:
    CATEGORY = "harness"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "seconds": ("FLOAT", {"default": 60.0})}}

    def run(self, images, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.05)
        return (images,)


NODE_CLASS_MAPPINGS = {"HarnessProbe_Fail": HarnessProbe_Fail, "HarnessProbe_Slow": HarnessProbe_Slow}
NODE_DISPLAY_NAME_MAPPINGS = {"HarnessProbe_Fail": "Fail (probe)", "HarnessProbe_Slow": "Slow (probe)"}
"""
BROKEN_PACK = "import a_module_that_does_not_exist_anywhere\nNODE_CLASS_MAPPINGS = {}\n"


def _image_prompt(save_prefix: str, extra: dict | None = None, width: int = 16) -> dict:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 16, "batch_size": 1, "color": 255}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": save_prefix}},
    }
    prompt.update(extra or {})
    return prompt


@pytest.fixture(scope="module")
def probe_server(start_comfy, tmp_path_factory: pytest.TempPathFactory) -> ComfyServer:
    packs = tmp_path_factory.mktemp("probe-packs")
    for name, source in (("harness-probe", PROBE_PACK), ("harness-broken", BROKEN_PACK)):
        (packs / name).mkdir()
        (packs / name / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return start_comfy({"harness-probe": packs / "harness-probe", "harness-broken": packs / "harness-broken"})


@pytest.fixture(scope="module")
def probe_client(probe_server: ComfyServer) -> ComfyClient:
    return ComfyClient(probe_server.url)


def test_server_layout_and_import_check(probe_server: ComfyServer, probe_client: ComfyClient) -> None:
    info = probe_client.object_info()
    assert {"HarnessProbe_Fail", "HarnessProbe_Slow", "EmptyImage", "SaveImage"} <= set(info)
    assert info["HarnessProbe_Fail"]["display_name"] == "Fail (probe)"
    assert import_failures(probe_server.log_text(), ("harness-broken",)), probe_server.log_tail()
    assert not import_failures(probe_server.log_text(), ("harness-probe",))
    for folder in ("magicanimate", "densepose", "checkpoints", "vae"):
        assert probe_server.model_dir(folder).is_dir()
    assert probe_server.pid > 0 and probe_server.log_path.is_file()


def test_server_runs_the_selected_comfyui(probe_client: ComfyClient, comfyui_dir: Path) -> None:
    reported = probe_client.system_stats().get("system", {}).get("comfyui_version")
    if reported is None:  # the 2024 floor reports no version
        assert not (comfyui_dir / "comfyui_version.py").exists()
    else:
        assert reported == comfyui_setup.comfyui_version(comfyui_dir)


def _fake_comfyui(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("main.py", "nodes.py", "folder_paths.py"):
        (folder / name).write_text("", encoding="utf-8")
    return folder


def test_comfyui_selection_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$COMFYUI_DIR, else the floor when COMFYUI_FLOOR=1, else the current archive, else the floor."""
    floor = _fake_comfyui(tmp_path / "cache" / "comfyui")
    checkout = _fake_comfyui(tmp_path / "checkout")
    archive = tmp_path / "shared" / "ComfyUI-0.3.64.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("main.py", "nodes.py", "folder_paths.py", "comfyui_version.py"):
            data = b'__version__ = "0.3.64"\n' if name == "comfyui_version.py" else b""
            info = tarfile.TarInfo(f"ComfyUI/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for name in ("COMFYUI_DIR", "COMFYUI_FLOOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(comfyui_setup.CACHE_ENV, str(floor))
    monkeypatch.setattr(comfyui_setup, "CURRENT_ARCHIVE", tmp_path / "absent.tar.gz")
    assert comfyui_setup.ensure_comfyui() == floor  # a clone without ../shared
    monkeypatch.setattr(comfyui_setup, "CURRENT_ARCHIVE", archive)
    with pytest.raises(comfyui_setup.ComfyUISetupError, match="sha256"):
        comfyui_setup.ensure_comfyui()
    monkeypatch.setattr(comfyui_setup, "CURRENT_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    current = comfyui_setup.ensure_comfyui()
    assert current == tmp_path / "cache" / "comfyui-0.3.64" and comfyui_setup.comfyui_version(current) == "0.3.64"
    monkeypatch.setenv("COMFYUI_FLOOR", "1")
    assert comfyui_setup.ensure_comfyui() == floor
    monkeypatch.setenv("COMFYUI_DIR", str(checkout))
    assert comfyui_setup.ensure_comfyui() == checkout


def test_run_and_download(probe_server: ComfyServer, probe_client: ComfyClient, tmp_path: Path) -> None:
    result = probe_client.run(_image_prompt("harness/ok"), timeout=120)
    files = result.files("2")
    assert len(files) == 1 and files[0].type == "output" and files[0].subfolder == "harness"
    assert (probe_server.output_dir / "harness" / files[0].filename).is_file()
    (downloaded,) = probe_client.download_outputs(result, tmp_path)
    assert downloaded.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_error_carries_node_errors(probe_client: ComfyClient) -> None:
    with pytest.raises(PromptValidationError) as caught:
        probe_client.submit(_image_prompt("harness/bad", width=-5))
    assert caught.value.status == 400
    assert "1" in caught.value.node_errors
    assert "value_smaller_than_min" in caught.value.error_types()
    assert "width" in str(caught.value)


def test_runtime_error_carries_exception_message(probe_client: ComfyClient) -> None:
    extra = {
        "3": {"class_type": "HarnessProbe_Fail", "inputs": {"images": ["1", 0], "message": "kaputt"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "harness/fail"}},
    }
    prompt = _image_prompt("harness/x", extra)
    del prompt["2"]
    with pytest.raises(PromptExecutionError) as caught:
        probe_client.run(prompt, timeout=120)
    assert caught.value.node_type == "HarnessProbe_Fail"
    assert caught.value.exception_type.endswith("ValueError")
    assert "probe failure: kaputt" in str(caught.value)


def test_interrupt(probe_client: ComfyClient) -> None:
    extra = {
        "3": {"class_type": "HarnessProbe_Slow", "inputs": {"images": ["1", 0], "seconds": 120.0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "harness/slow"}},
    }
    prompt = _image_prompt("harness/y", extra)
    del prompt["2"]
    prompt_id, _ = probe_client.submit(prompt)

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = probe_client.queue().get("queue_running", [])
            if any(item[1] == prompt_id for item in running):
                time.sleep(0.5)
                probe_client.interrupt(prompt_id)
                return
            time.sleep(0.1)

    worker = threading.Thread(target=interrupt_when_running, daemon=True)
    worker.start()
    started = time.monotonic()
    with pytest.raises(PromptInterrupted):
        probe_client.wait(prompt_id, timeout=90)
    worker.join(timeout=5)
    assert time.monotonic() - started < 60
