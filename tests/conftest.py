"""Shared fixtures: generated tiny checkpoints and inputs (always available), and the golden data folder.

Most tests run on checkpoints and inputs generated from fixed seeds at session start (`tiny_checkpoints.py`,
`tiny_densepose.py`, `sample_media.py`), so a clone runs them with nothing beside it. Only the tests that
compare against the original implementation's numbers need the golden folder (`golden_dir`): without it
they skip, except under CI=true, where a missing golden folder fails them.
`MAGICANIMATE_GOLDEN_DIR=none` hides the golden folder, to see what a bare clone runs.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sample_media import write_sample_inputs
from tests.tiny_checkpoints import write_pretrained_models
from tests.tiny_densepose import write_densepose_pkl

PACK_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_ENV = "MAGICANIMATE_GOLDEN_DIR"
HIDDEN = "none"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_golden_dir() -> Path | None:
    """The golden folder: $MAGICANIMATE_GOLDEN_DIR ("none": no folder), else `../shared/golden`."""
    chosen = os.environ.get(GOLDEN_ENV, "").strip()
    if chosen.lower() == HIDDEN:
        return None
    for candidate in (chosen, PACK_ROOT.parent / "shared" / "golden"):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The original implementation's outputs; skips without them, fails under CI=true (CI always has them)."""
    found = find_golden_dir()
    if found is None:
        reason = (
            f"golden data not found: set {GOLDEN_ENV} or place shared/golden beside the checkout "
            f"({PACK_ROOT.parent / 'shared' / 'golden'})"
        )
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def golden_pretrained_dir(golden_dir: Path) -> Path:
    """The checkpoints the golden outputs were computed with, laid out like the real `pretrained_models/`."""
    return golden_dir / "tiny_checkpoints" / "pretrained_models"


@pytest.fixture(scope="session")
def tiny_pretrained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny seeded checkpoints in the real `pretrained_models/` layout and formats (written once per session)."""
    return write_pretrained_models(tmp_path_factory.mktemp("tiny") / "pretrained_models")


@pytest.fixture(scope="session")
def tiny_densepose_pkl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seeded DensePose R-CNN as a model-zoo `.pkl` (copy it before writing beside it)."""
    return write_densepose_pkl(tmp_path_factory.mktemp("densepose") / "tiny_densepose.pkl")


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory: pytest.TempPathFactory, tiny_pretrained_dir: Path, tiny_densepose_pkl: Path
                  ) -> Path:
    """Generated inputs and weights in the golden folder's input layout (see `sample_media.py`)."""
    return write_sample_inputs(tmp_path_factory.mktemp("inputs"), tiny_pretrained_dir, tiny_densepose_pkl)
