"""Registration rules for every node the pack exports (ComfyUI's node-definition contract).

Runs without ComfyUI: the pack is imported as a package by the `pack` fixture (tests/nodes/conftest.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

PREFIX = "MagicAnimate_"
CATEGORY_ROOT = "MagicAnimate"
PUBLIC_KEYS = {
    "MagicAnimate_LoadReference",
    "MagicAnimate_LoadVideo",
    "MagicAnimate_VideoToDensePose",
    "MagicAnimate_ModelLoader",
    "MagicAnimate_Sampler",
    "MagicAnimate_SaveVideo",
}
INPUT_SECTIONS = {"required", "optional", "hidden"}


def _inputs(cls: type) -> dict[str, dict[str, Any]]:
    declared = cls.INPUT_TYPES()
    return {section: declared.get(section, {}) for section in ("required", "optional")}


def test_pack_exports_mappings(pack: ModuleType) -> None:
    assert isinstance(pack.NODE_CLASS_MAPPINGS, dict) and pack.NODE_CLASS_MAPPINGS
    assert isinstance(pack.NODE_DISPLAY_NAME_MAPPINGS, dict)


def test_public_keys_are_registered(pack: ModuleType) -> None:
    missing = PUBLIC_KEYS - set(pack.NODE_CLASS_MAPPINGS)
    assert not missing, f"public node keys missing from NODE_CLASS_MAPPINGS: {sorted(missing)}"


def test_every_key_is_prefixed(pack: ModuleType) -> None:
    wrong = [key for key in pack.NODE_CLASS_MAPPINGS if not key.startswith(PREFIX) or key == PREFIX]
    assert not wrong, f"keys without the {PREFIX!r} prefix collide with core/other packs: {wrong}"


def test_display_names_only_for_own_keys(pack: ModuleType) -> None:
    # ComfyUI applies NODE_DISPLAY_NAME_MAPPINGS unguarded: a foreign key would rename someone else's node.
    foreign = set(pack.NODE_DISPLAY_NAME_MAPPINGS) - set(pack.NODE_CLASS_MAPPINGS)
    assert not foreign, f"display names for keys this pack does not register: {sorted(foreign)}"


def test_display_name_is_friendly(pack: ModuleType, node_key: str) -> None:
    name = pack.NODE_DISPLAY_NAME_MAPPINGS.get(node_key)
    assert isinstance(name, str) and name.strip(), f"{node_key}: no display name"
    assert name != node_key and "_" not in name, f"{node_key}: display name {name!r} is not human-friendly"
    assert "MagicAnimate" in name, (
        f"{node_key}: display name {name!r} should say MagicAnimate, e.g. 'Sampler (MagicAnimate)'"
    )


def test_class_attributes(pack: ModuleType, node_key: str) -> None:
    cls = pack.NODE_CLASS_MAPPINGS[node_key]
    category = getattr(cls, "CATEGORY", None)
    assert isinstance(category, str) and (category == CATEGORY_ROOT or category.startswith(CATEGORY_ROOT + "/")), (
        f"{node_key}: CATEGORY {category!r} must be {CATEGORY_ROOT!r} or {CATEGORY_ROOT + '/...'!r}"
    )
    function = getattr(cls, "FUNCTION", None)
    assert isinstance(function, str) and callable(getattr(cls, function, None)), (
        f"{node_key}: FUNCTION {function!r} is not a method of the class"
    )
    description = getattr(cls, "DESCRIPTION", None)
    assert isinstance(description, str) and description.strip(), f"{node_key}: DESCRIPTION missing"
    returns = getattr(cls, "RETURN_TYPES", None)
    assert isinstance(returns, tuple), f"{node_key}: RETURN_TYPES must be a tuple, got {returns!r}"
    for attribute in ("RETURN_NAMES", "OUTPUT_TOOLTIPS", "OUTPUT_IS_LIST"):
        value = getattr(cls, attribute, None)
        assert value is None or len(value) == len(returns), f"{node_key}: {attribute} length differs from RETURN_TYPES"
    if not returns:
        assert getattr(cls, "OUTPUT_NODE", False), f"{node_key}: no outputs and not OUTPUT_NODE: it would never run"


def test_inputs_have_tooltips_and_list_combos(pack: ModuleType, node_key: str) -> None:
    cls = pack.NODE_CLASS_MAPPINGS[node_key]
    declared = cls.INPUT_TYPES()
    assert isinstance(declared, dict) and set(declared) <= INPUT_SECTIONS, (
        f"{node_key}: INPUT_TYPES sections {sorted(declared)}"
    )
    problems = []
    for section, inputs in _inputs(cls).items():
        for name, spec in inputs.items():
            if not isinstance(spec, (tuple, list)) or not spec:
                problems.append(f"{section}.{name}: spec {spec!r} is not (TYPE, options)")
                continue
            kind = spec[0]
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if not isinstance(options.get("tooltip"), str) or not options["tooltip"].strip():
                problems.append(f"{section}.{name}: no tooltip")
            if kind == "COMBO":  # not validated server-side in ComfyUI 0.3.64
                problems.append(f"{section}.{name}: use a list-style combo, not 'COMBO'")
            elif not isinstance(kind, (str, list, tuple)):
                problems.append(f"{section}.{name}: type {kind!r} is neither a type name nor a list of choices")
    assert not problems, f"{node_key}:\n" + "\n".join(problems)
