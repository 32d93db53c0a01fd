"""The one-way arrows of docs/architecture.md, checked on the source and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "latent_preview", "execution"}


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in `path` (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _library_files(library: str) -> list[Path]:
    return sorted((PACK_ROOT / library).rglob("*.py"))


def test_libraries_never_import_comfyui():
    offenders = {
        str(path.relative_to(PACK_ROOT)): sorted(_imports(path) & COMFY_MODULES)
        for library in ("magicanimate_core", "densepose_node")
        for path in _library_files(library)
        if _imports(path) & COMFY_MODULES
    }
    assert not offenders, f"ComfyUI imported outside nodes/: {offenders}"


def test_densepose_library_modules_never_import_the_core():
    offenders = [
        str(path.relative_to(PACK_ROOT))
        for path in _library_files("densepose_node")
        if path.name != "cli.py" and "magicanimate_core" in _imports(path)
    ]
    assert not offenders, f"densepose_node modules importing magicanimate_core (only its cli.py may): {offenders}"


def test_core_imports_without_pyav_or_densepose():
    code = (
        "import sys\n"
        "import magicanimate_core.cli, magicanimate_core.pipeline, magicanimate_core.loading\n"
        "import magicanimate_core.media.fit, magicanimate_core.media.images, magicanimate_core.media.frames\n"
        "loaded = sorted(m for m in sys.modules if m == 'av' or m.split('.')[0] == 'densepose_node')\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PACK_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"importing magicanimate_core loaded: {result.stdout.strip()}"
