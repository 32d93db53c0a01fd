"""The pack loads in a real ComfyUI and publishes its fixed public node API through /object_info, and (on
ComfyUI versions with Browse Templates) its example workflows through /api/workflow_templates."""
from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest
from comfy_client import ComfyClient
from comfy_server import ComfyServer, import_failures
from comfyui_setup import PACK_LINK_NAME, PACK_ROOT


class NodeAPI(NamedTuple):
    inputs: tuple[str, ...]           # must exist (required or optional)
    optional: tuple[str, ...] = ()    # must exist under "optional"
    output_node: bool = False


# The public API: workflows and API prompts depend on these keys and input names. Never rename; only add.
EXPECTED_NODES: dict[str, NodeAPI] = {
    "MagicAnimate_LoadReference": NodeAPI(("image",)),
    "MagicAnimate_LoadVideo": NodeAPI(
        ("video", "frame_load_cap", "skip_first_frames", "select_every_nth", "force_rate")),
    "MagicAnimate_VideoToDensePose": NodeAPI(("images", "backend", "weights")),
    "MagicAnimate_ModelLoader": NodeAPI(("model", "dtype")),
    "MagicAnimate_Sampler": NodeAPI(
        ("model", "reference", "motion", "seed", "steps", "guidance_scale", "context_frames", "context_overlap"),
        optional=("noise",)),
    "MagicAnimate_SaveVideo": NodeAPI(("images", "fps", "filename_prefix", "format"), output_node=True),
}
CATEGORY_ROOT = "MagicAnimate"
WORKFLOWS = PACK_ROOT / "workflows"


def _category_ok(category: str) -> bool:
    return category == CATEGORY_ROOT or category.startswith(CATEGORY_ROOT + "/")


@pytest.fixture(scope="module")
def object_info(comfy_client: ComfyClient) -> dict[str, Any]:
    return comfy_client.object_info()


def test_pack_imports_without_errors(comfy_server: ComfyServer, object_info: dict[str, Any]) -> None:
    log = comfy_server.log_text()
    failures = import_failures(log, (PACK_LINK_NAME,))  # not PACK_ROOT: .cache/ holds ComfyUI itself
    assert not failures, "ComfyUI could not import the pack:\n" + "\n".join(failures) + "\n" + comfy_server.log_tail()
    assert any(key.startswith("MagicAnimate_") for key in object_info), (
        "no MagicAnimate_* node registered; server log:\n" + comfy_server.log_tail()
    )


@pytest.mark.parametrize("key", sorted(EXPECTED_NODES))
def test_object_info_lists_node(key: str, object_info: dict[str, Any]) -> None:
    assert key in object_info, f"{key} missing from /object_info (MagicAnimate keys: "\
        f"{sorted(k for k in object_info if k.startswith('MagicAnimate'))})"
    info = object_info[key]
    expected = EXPECTED_NODES[key]
    assert _category_ok(info.get("category", "")), f"{key}: category {info.get('category')!r}"
    declared = info.get("input", {})
    required, optional = set(declared.get("required", {})), set(declared.get("optional", {}))
    missing = [name for name in expected.inputs if name not in required | optional]
    assert not missing, f"{key}: inputs {missing} missing; has required {sorted(required)}, optional {sorted(optional)}"
    not_optional = [name for name in expected.optional if name not in optional]
    assert not not_optional, f"{key}: {not_optional} must be optional inputs"
    assert bool(info.get("output_node")) == expected.output_node, f"{key}: output_node {info.get('output_node')}"
    display = info.get("display_name", "")
    assert display and display != key and "_" not in display, f"{key}: display name {display!r} is not friendly"


def test_every_pack_node_is_in_a_magicanimate_category(object_info: dict[str, Any]) -> None:
    wrong = {k: v.get("category") for k, v in object_info.items()
             if k.startswith("MagicAnimate_") and not _category_ok(v.get("category", ""))}
    assert not wrong, f"nodes outside the MagicAnimate category: {wrong}"


def test_nodes_are_served_by_the_pack_not_by_core(object_info: dict[str, Any]) -> None:
    """ComfyUI silently keeps its own class for a key it already has; ours must all come from the pack."""
    modules = {key: info.get("python_module") for key, info in object_info.items() if key in EXPECTED_NODES}
    if not any(modules.values()):
        pytest.skip("this ComfyUI does not report python_module (2024 versions)")
    assert modules == dict.fromkeys(EXPECTED_NODES, f"custom_nodes.{PACK_LINK_NAME}")


def test_browse_templates_lists_every_shipped_workflow(comfy_client: ComfyClient) -> None:
    templates = comfy_client.workflow_templates()
    if templates is None:
        pytest.skip("this ComfyUI has no /api/workflow_templates (Browse Templates came after the 2024 floor)")
    shipped = sorted(path.stem for path in WORKFLOWS.glob("*.json"))
    assert sorted(templates.get(PACK_LINK_NAME, [])) == shipped, templates
    for name in shipped:
        served = comfy_client.workflow_template(PACK_LINK_NAME, name)
        assert served == json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8")), name
