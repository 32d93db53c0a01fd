"""Shared fixtures: where the golden data lives, and the tiny checkpoint folder inside it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PACK_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_ENV = "MAGICANIMATE_GOLDEN_DIR"


def find_golden_dir() -> Path | None:
    """The golden folder: $MAGICANIMATE_GOLDEN_DIR, else `../shared/golden` beside the checkout."""
    candidates = [os.environ.get(GOLDEN_ENV), PACK_ROOT.parent / "shared" / "golden"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    found = find_golden_dir()
    if found is None:
        pytest.skip(
            f"golden data not found: set {GOLDEN_ENV} or place shared/golden beside the checkout "
            f"({PACK_ROOT.parent / 'shared' / 'golden'})"
        )
    return found


@pytest.fixture(scope="session")
def tiny_pretrained_dir(golden_dir: Path) -> Path:
    """The tiny checkpoints, laid out exactly like the real `pretrained_models/` download."""
    return golden_dir / "tiny_checkpoints" / "pretrained_models"
