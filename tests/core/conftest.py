"""Fixtures for the core tests: pipelines on the generated and on the golden tiny checkpoints, and cases.

`tiny_pipeline`, `case_a` and `case_b` are generated (no golden folder needed): case A has 16 DensePose
frames (one window), case B 20 (padded to 32: three windows, the last wrapping around), both with the
seed-1 noise. `golden_pipeline`, `golden_case_a` and `golden_case_b` are the golden folder's, with the
original's outputs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from magicanimate_core.pipeline import MagicAnimatePipeline
from tests.sample_media import densepose_clip, reference_image


@dataclass
class GoldenCase:
    reference: torch.Tensor  # [H, W, 3] in [0, 1]
    motion: torch.Tensor  # [F, H, W, 3] in [0, 1], unpadded
    noise: torch.Tensor  # [16, 4, h, w]
    outputs: dict[str, torch.Tensor]  # the original's outputs (golden cases only)
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


def generated_case(frames: int) -> GoldenCase:
    """The first `frames` frames of the generated DensePose clip, the generated reference, seed-1 noise."""
    noise = torch.randn((1, 4, 16, 8, 8), generator=torch.Generator("cpu").manual_seed(1))
    return GoldenCase(
        reference=torch.from_numpy(reference_image()).float() / 255,
        motion=torch.from_numpy(densepose_clip(frames)).float() / 255,
        noise=noise[0].permute(1, 0, 2, 3),
        outputs={},
        steps=3,
    )


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_pretrained_dir: Path) -> MagicAnimatePipeline:
    torch.set_num_threads(2)
    return MagicAnimatePipeline.from_pretrained(tiny_pretrained_dir)


@pytest.fixture(scope="session")
def golden_pipeline(golden_pretrained_dir: Path) -> MagicAnimatePipeline:
    torch.set_num_threads(2)
    return MagicAnimatePipeline.from_pretrained(golden_pretrained_dir)


@pytest.fixture(scope="session")
def case_a() -> GoldenCase:
    return generated_case(16)


@pytest.fixture(scope="session")
def case_b() -> GoldenCase:
    return generated_case(20)


@pytest.fixture(scope="session")
def golden_case_a(golden_dir: Path) -> GoldenCase:
    return load_case(golden_dir, "A")


@pytest.fixture(scope="session")
def golden_case_b(golden_dir: Path) -> GoldenCase:
    return load_case(golden_dir, "B")


@pytest.fixture(scope="session")
def units(golden_dir: Path):
    """`units(name)` -> that unit golden's tensors."""
    return lambda name: load_file(str(golden_dir / "units" / f"{name}.safetensors"))


@pytest.fixture
def nnpack_calls(monkeypatch) -> list[tuple[str, tuple[int, ...]]]:
    """Every Winograd (NNPACK) convolution from here on: the calling thread's name and the image's shape."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    nnpack = torch._nnpack_spatial_convolution

    def recorded(images: torch.Tensor, *args):
        calls.append((threading.current_thread().name, tuple(images.shape)))
        return nnpack(images, *args)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", recorded)
    return calls
