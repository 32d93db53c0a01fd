"""The shipped workflows in the current ComfyUI frontend (1.27), driven by headless Chromium through Playwright.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package; Playwright's own browser
download is never used. Every workflow is opened the way a user finds it: *Templates* in the side bar, the
pack's entry under *Custom Nodes*, its card. It must load with no dialog (missing nodes) and no unknown or
red node, and the frontend must turn it into the shipped API prompt (test_workflows.py runs those). One
workflow is then queued with *Run* at test size: validation must leave no red node, it must finish, and each
Save Video node's preview must be a <video> of the saved file that plays. One GIF run checks that a GIF is
previewed as an (animated) image, which a <video> element cannot show.

ComfyUI versions without Browse Templates (the 2024 floor and its old frontend) skip this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from comfy_client import ComfyClient
from comfy_server import ComfyServer
from comfyui_setup import PACK_LINK_NAME
from pack_inputs import DENSEPOSE_CLIP, SIZE, SMALL, WORKFLOWS, api_workflow, install

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
NAMES = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
SAVE = "MagicAnimate_SaveVideo"
QUEUED = "animate_densepose_video"  # the workflow run from the page (no DensePose step: the quickest animation)
ACTIVE_WORKFLOW = "() => app.extensionManager.workflow.activeWorkflow?.path"
PAGE_ERRORS: list[str] = []  # uncaught JavaScript errors once the app is up


@pytest.fixture(scope="module")
def page(comfy_server: ComfyServer, comfy_client: ComfyClient, sample_inputs: Path):
    if comfy_client.workflow_templates() is None:
        pytest.skip("this ComfyUI has no Browse Templates (/api/workflow_templates): the browser test needs >= 0.3.64")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no `playwright install`)")
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} missing: apt-get install chromium"
        pytest.fail(message) if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else pytest.skip(message)
    install(comfy_server, sample_inputs)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(comfy_server.url)
        page.wait_for_function(
            "window.app?.graph && Object.keys(LiteGraph.registered_node_types).length > 100", timeout=120_000
        )
        page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{error}\n{error.stack}"))
        yield page
        browser.close()


def open_template(page, name: str) -> list[dict[str, Any]]:
    """Workflow → Browse Templates → Custom Nodes → this pack → the card `name`; returns the loaded nodes."""
    dialog = page.get_by_role("dialog")
    if not dialog.is_visible():  # a new user gets the dialog at start-up; later it opens from the side bar
        page.locator(".side-bar-button", has_text="Templates").first.click()
    dialog.get_by_text(PACK_LINK_NAME, exact=True).first.click()
    before = page.evaluate(ACTIVE_WORKFLOW)
    page.locator(f"[data-testid='template-workflow-{name}']").click()
    page.wait_for_function(f"() => ({ACTIVE_WORKFLOW})() !== {json.dumps(before)}", timeout=60_000)
    dialog.wait_for(state="hidden")
    opened = page.evaluate(ACTIVE_WORKFLOW)  # a second copy opens as "workflows/<name> (2).json"
    assert opened.removeprefix("workflows/").startswith(name), opened
    return page.evaluate(
        """() => app.graph._nodes.map(n => ({
            id: n.id, type: n.type, known: !!LiteGraph.registered_node_types[n.type], red: !!n.has_errors}))"""
    )


def shrink(page, workflow: dict, save_format: str) -> None:
    """Type the test sizes into the widgets (64x64, few frames and steps; the 64x64 DensePose clip for the
    512x512 bundled example motion) and the save format."""
    values: dict[int, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        values[node["id"]] = dict(SMALL.get(node["type"], {}))
        if node["type"] == "MagicAnimate_LoadVideo" and node["widgets_values"][0].startswith("example:"):
            values[node["id"]]["video"] = DENSEPOSE_CLIP
        if node["type"] == SAVE:
            values[node["id"]]["format"] = save_format
    page.evaluate(
        """([values]) => {
        for (const node of app.graph._nodes)
            for (const [name, value] of Object.entries(values[node.id] || {}))
                node.widgets.find(w => w.name === name).value = value;
    }""",
        [values],
    )


def run(page, client: ComfyClient) -> dict[str, Any]:
    """Press Run; the queued prompt must pass validation (no red node) and finish; returns its outputs."""
    with page.expect_response(lambda r: r.url.endswith("/api/prompt") and r.request.method == "POST") as response:
        page.get_by_role("button", name="Run", exact=True).click()
    body = response.value.json()
    red = page.evaluate("() => app.graph._nodes.filter(n => n.has_errors).map(n => n.type)")
    assert response.value.status == 200 and not body.get("node_errors") and not red, (body, red)
    return client.wait(body["prompt_id"], timeout=600).outputs


def play(page, node_id: int, filename: str) -> list[float]:
    """The node's video preview shows `filename` and plays: [width, height, seconds played, duration]."""
    page.wait_for_function(
        "([id, name]) => app.graph.getNodeById(id).videoContainer?.querySelector('video')?.src.includes(name)",
        arg=[node_id, filename],
        timeout=60_000,
    )
    return page.evaluate(
        """async ([id]) => {
        const video = app.graph.getNodeById(id).videoContainer.querySelector("video");
        video.muted = true;
        await video.play();
        while (video.currentTime === 0 && !video.error) await new Promise(r => requestAnimationFrame(r));
        return [video.videoWidth, video.videoHeight, video.currentTime, video.duration];
    }""",
        [node_id],
    )


def declared_only(prompt: dict, object_info: dict) -> dict:
    """`prompt` without inputs the server ignores (frontend-only widgets such as a video preview)."""
    kept = {}
    for node_id, node in prompt.items():
        spec = object_info[node["class_type"]]["input"]
        names = {name for section in ("required", "optional", "hidden") for name in spec.get(section, {})}
        kept[node_id] = {**node, "inputs": {k: v for k, v in node["inputs"].items() if k in names}}
    return kept


@pytest.mark.browser
@pytest.mark.parametrize("name", NAMES)
def test_template_loads_as_the_shipped_api_prompt(page, comfy_client: ComfyClient, name: str):
    """No missing or red node, and the frontend queues exactly the shipped API prompt (which
    test_workflows.py validates and runs)."""
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    nodes = open_template(page, name)
    assert [n["type"] for n in nodes] == [n["type"] for n in workflow["nodes"]], nodes
    assert all(n["known"] and not n["red"] for n in nodes), f"missing or red nodes: {nodes}"
    assert page.get_by_role("dialog").count() == 0, "a dialog (missing nodes?) opened on load"
    queued = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert declared_only(queued, comfy_client.object_info()) == api_workflow(name)
    assert PAGE_ERRORS == []


@pytest.mark.browser
def test_queued_template_plays_its_video(page, comfy_client: ComfyClient):
    name = QUEUED
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    open_template(page, name)
    shrink(page, workflow, "h264-mp4")
    outputs = run(page, comfy_client)
    savers = [node["id"] for node in workflow["nodes"] if node["type"] == SAVE]
    assert savers and sorted(outputs) == sorted(str(node_id) for node_id in savers)
    for node_id in savers:
        (video,) = outputs[str(node_id)]["images"]
        assert outputs[str(node_id)]["animated"] == [True] and video["filename"].endswith(".mp4")
        width, height, played, duration = play(page, node_id, video["filename"])
        assert (width, height) == (SIZE, SIZE) and played > 0 and duration > 0, (width, height, played, duration)
    assert PAGE_ERRORS == []


@pytest.mark.browser
def test_gif_is_previewed_as_an_image(page, comfy_client: ComfyClient):
    """Same workflow and inputs as the test before (ComfyUI's cache re-runs only the saver), saved as GIF."""
    name = QUEUED
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    open_template(page, name)
    shrink(page, workflow, "gif")
    outputs = run(page, comfy_client)
    (saver,) = [node["id"] for node in workflow["nodes"] if node["type"] == SAVE]
    (gif,) = outputs[str(saver)]["images"]
    page.wait_for_function(
        "([id, name]) => app.graph.getNodeById(id).imgs?.some(i => i.naturalWidth > 0 && i.src.includes(name))",
        arg=[saver, gif["filename"]],
        timeout=60_000,
    )
    assert page.evaluate("([id]) => !app.graph.getNodeById(id).videoContainer", [saver])
    assert PAGE_ERRORS == []
