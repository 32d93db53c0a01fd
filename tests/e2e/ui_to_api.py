"""UI workflow (v0.4 or v1.0 links) -> API prompt, by the frontend's widget rules, using `/object_info`.

Rules (docs comfyui_rules.md §6): widget inputs are the INT/FLOAT/STRING/BOOLEAN/combo inputs without
`forceInput`, required then optional, in `input_order` (or declaration order); their values come from
`widgets_values` in that order. An input with `control_after_generate` (or an INT named seed/noise_seed)
is followed by one extra entry, two for a combo; a required combo with an upload flag adds one trailing
entry. Links override widget values. Muted (2) and bypassed (4) nodes and classes unknown to the server
(Note, Reroute, PrimitiveNode) are skipped.
"""

from __future__ import annotations

from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload")
SKIPPED_MODES = {2, 4}


def widget_inputs(info: dict[str, Any]) -> list[tuple[str, int]]:
    """(input name, number of widgets_values entries it takes) for a node class's widget inputs, in order."""
    spec = info["input"]
    order = info.get("input_order") or {section: list(spec.get(section, {})) for section in ("required", "optional")}
    widgets = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            kind, options = spec[section][name][0], (spec[section][name] + [{}])[1]
            is_combo = isinstance(kind, list) or kind == "COMBO"
            if not (is_combo or kind in WIDGET_TYPES) or options.get("forceInput"):
                continue
            control = options.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed"))
            widgets.append((name, 1 + (2 if is_combo else 1) * bool(control)))
    return widgets


def expected_widget_values(info: dict[str, Any]) -> int:
    uploads = any(
        any((entry + [{}])[1].get(flag) for flag in UPLOAD_FLAGS) for entry in info["input"]["required"].values()
    )
    return sum(count for _, count in widget_inputs(info)) + uploads


def _links(workflow: dict[str, Any]) -> dict[int, tuple[int, int]]:
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"])
        else:
            links[link[0]] = (link[1], link[2])
    return links


def convert(workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """The API prompt the frontend would queue for `workflow`; raises ValueError on a widget-count mismatch."""
    links, prompt = _links(workflow), {}
    for node in workflow["nodes"]:
        info = object_info.get(node["type"])
        if info is None or node.get("mode", 0) in SKIPPED_MODES:
            continue
        values, expected = list(node.get("widgets_values") or []), expected_widget_values(info)
        if len(values) != expected:
            raise ValueError(f"node {node['id']} ({node['type']}): {len(values)} widgets_values, expected {expected}")
        inputs: dict[str, Any] = {}
        position = 0
        for name, count in widget_inputs(info):
            inputs[name] = values[position]
            position += count
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                origin, origin_slot = links[slot["link"]]
                inputs[slot["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {
            "class_type": node["type"],
            "inputs": inputs,
            "_meta": {"title": node.get("title") or info["display_name"]},
        }
    return prompt
