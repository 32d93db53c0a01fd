"""Fixtures for the core tests: the pipeline loaded from the golden tiny checkpoints, and case inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from magicanimate_core.pipeline import MagicAnimatePipeline


@dataclass
class GoldenCase:
    reference: torch.Tensor  # [H, W, 3] in [0, 1]
    motion: torch.Tensor  # [F, H, W, 3] in [0, 1], unpadded
    noise: torch.Tensor  # [16, 4, h, w]
    outputs: dict[str, torch.Tensor]
    steps: int


def load_case(golden_dir: Path, name: str) -> GoldenCase:
    folder = golden_dir / f"case_{name}"
    reference = np.array(Image.open(folder / "reference.png").convert("RGB"))
    motion = np.load(folder / "control.npy")
    inputs = load_file(str(folder / "inputs.safetensors"))
    return GoldenCase(
        reference=torch.from_numpy(reference).float() / 255,
        motion=torch.from_numpy(motion).float() / 255,
        noise=inputs["init_noise"][0].permute(1, 0, 2, 3),
        outputs=load_file(str(folder / "outputs.safetensors")),
        steps=3,
    )


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_pretrained_dir: Path) -> MagicAnimatePipeline:
    torch.set_num_threads(2)
    return MagicAnimatePipeline.from_pretrained(tiny_pretrained_dir)


@pytest.fixture(scope="session")
def case_a(golden_dir: Path) -> GoldenCase:
    return load_case(golden_dir, "A")


@pytest.fixture(scope="session")
def case_b(golden_dir: Path) -> GoldenCase:
    return load_case(golden_dir, "B")


@pytest.fixture(scope="session")
def units(golden_dir: Path):
    """`units(name)` -> that unit golden's tensors."""
    return lambda name: load_file(str(golden_dir / "units" / f"{name}.safetensors"))
