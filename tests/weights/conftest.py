"""Fixtures for the weights tests: the test-side LDM layout helpers, loaded by path (no package here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def ldm_layout() -> ModuleType:
    path = Path(__file__).with_name("ldm_layout.py")
    spec = importlib.util.spec_from_file_location("weights_ldm_layout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
