"""The README's node reference matches the nodes' definitions (regenerate with the command in the message)."""

from __future__ import annotations

from types import ModuleType

from tests.nodes.node_reference import README, render, updated_readme


def test_readme_node_reference_is_current(pack: ModuleType) -> None:
    text = README.read_text(encoding="utf-8")
    fresh = updated_readme(text, render(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS))
    assert fresh == text, "README.md's node reference is stale: run `python -m tests.nodes.node_reference`"


def test_reference_lists_every_node_and_input(pack: ModuleType) -> None:
    section = render(pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS)
    for key, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert f"(`{key}`)" in section
        declared = cls.INPUT_TYPES()
        for name in [*declared.get("required", {}), *declared.get("optional", {})]:
            assert f"| `{name}`" in section, f"{key}.{name} missing from the reference"
