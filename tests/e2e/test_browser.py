"""The shipped UI workflows in the real ComfyUI frontend, driven by headless Chromium through Playwright.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` Python package; Playwright's own
browser download is never used. Each workflow is loaded with `app.loadGraphData`, must show no
missing-node dialog, no unknown node and no red (failed validation / execution) node, is queued from
the page, and its Save Video node must get the video preview. The 2024 frontend draws animated outputs
with an <img>, which shows GIF/WebP but not MP4, so MP4 previews are checked by playing the served file
in a <video> element, and one run per workflow saves a GIF to check the preview on the node itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from comfy_server import ComfyServer
from pack_inputs import DENSEPOSE_CLIP, SIZE, SMALL, WORKFLOWS, install

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NAMES = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
SAVE = "MagicAnimate_SaveVideo"
PAGE_ERRORS: list[str] = []  # uncaught JavaScript errors on the page


@pytest.fixture(scope="module")
def page(comfy_server: ComfyServer, golden_dir: Path):
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no `playwright install`)")
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} missing: apt-get install chromium"
        pytest.fail(message) if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else pytest.skip(message)
    install(comfy_server, golden_dir)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
        page.goto(comfy_server.url)
        page.wait_for_function("window.app?.graph && Object.keys(LiteGraph.registered_node_types).length > 100")
        yield page
        browser.close()


def overrides(workflow: dict, save_format: str) -> dict[int, dict]:
    """Widget values per node id: test sizes, the 64x64 DensePose clip for bundled examples, the format."""
    found = {}
    for node in workflow["nodes"]:
        values = dict(SMALL.get(node["type"], {}))
        if node["type"] == "MagicAnimate_LoadVideo" and node["widgets_values"][0].startswith("example:"):
            values["video"] = DENSEPOSE_CLIP
        if node["type"] == SAVE:
            values["format"] = save_format
        found[node["id"]] = values
    return found


def queue(page, workflow: dict, save_format: str) -> dict:
    """Load `workflow`, apply the test overrides, queue it; then wait for every Save Video's output."""
    state = page.evaluate(
        """async ([workflow, overrides]) => {
        await app.loadGraphData(workflow);
        const unknown = app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type]).map(n => n.type);
        const missingDialog = !!document.querySelector(".comfy-missing-nodes");
        for (const node of app.graph._nodes)
            for (const [name, value] of Object.entries(overrides[node.id] || {}))
                node.widgets.find(w => w.name === name).value = value;
        await app.queuePrompt(0, 1);
        return {unknown, missingDialog, nodeErrors: app.lastNodeErrors};
    }""",
        [workflow, overrides(workflow, save_format)],
    )
    assert state["unknown"] == [] and not state["missingDialog"], state
    assert not state["nodeErrors"], f"red nodes after queueing: {state['nodeErrors']}"
    savers = [node["id"] for node in workflow["nodes"] if node["type"] == SAVE]
    page.wait_for_function(
        "([ids]) => app.lastExecutionError || ids.every(id => app.nodeOutputs[id]?.images?.length)",
        arg=[savers],
        timeout=600_000,
    )
    outputs = page.evaluate(
        "([ids]) => ({error: app.lastExecutionError, outputs: ids.map(id => app.nodeOutputs[id])})", [savers]
    )
    assert outputs["error"] is None, f"execution error (magenta node): {outputs['error']}"
    return dict(zip(savers, outputs["outputs"]))


@pytest.mark.browser
@pytest.mark.parametrize("name", NAMES)
def test_workflow_runs_from_the_frontend(page, name):
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text())
    for node_id, output in queue(page, workflow, "h264-mp4").items():
        (image,) = output["images"]
        assert output["animated"] == [True] and image["filename"].endswith(".mp4") and image["type"] == "output"
        size = page.evaluate(
            """async (params) => {
            const video = document.createElement("video");
            video.muted = true;
            video.src = "/view?" + new URLSearchParams(params);
            await new Promise((ok, fail) => { video.onloadeddata = ok; video.onerror = () => fail(video.error); });
            return [video.videoWidth, video.videoHeight, video.duration];
        }""",
            image,
        )
        assert size[:2] == [SIZE, SIZE] and size[2] > 0, f"node {node_id}: {size}"

    for node_id, output in queue(page, workflow, "gif").items():
        page.wait_for_function("([id]) => app.graph.getNodeById(id).imgs?.[0]?.naturalWidth > 0", arg=[node_id])
        shown = page.evaluate("([id]) => app.graph.getNodeById(id).imgs.map(i => [i.naturalWidth, i.src])", [node_id])
        assert shown[0][0] == SIZE and output["images"][0]["filename"] in shown[0][1]
    assert PAGE_ERRORS == []
