"""Model calls per denoising step match the reference schedule (spec §12.1), minus the work we skip."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from magicanimate_core.pipeline import MagicAnimatePipeline, Speedups, StepInfo

STEPS = 2


class Calls:
    """Calls and rows (batch entries; UNet: frame-rows) per network, through forward pre-hooks."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.calls: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.handles = [
            module.register_forward_pre_hook(self._counter(name), with_kwargs=True) for name, module in modules.items()
        ]

    def _counter(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            sample = args[0]
            self.calls[name] += 1
            if name == "unet":  # (windows, 4, frames, h, w), duplicated cfg_copies times after the down path
                self.rows[name] += sample.shape[0] * sample.shape[2] * kwargs.get("cfg_copies", 1)
            else:
                self.rows[name] += sample.shape[0]

        return hook

    def snapshot(self) -> dict[str, int]:
        return {f"{name}_calls": n for name, n in self.calls.items()} | {f"{k}_rows": n for k, n in self.rows.items()}


@pytest.fixture
def calls(tiny_pipeline: MagicAnimatePipeline) -> Iterator[Calls]:
    models = tiny_pipeline.models
    counter = Calls(
        {
            "unet": models.unet,
            "controlnet": models.controlnet,
            "appearance": models.appearance_encoder,
            "vae_decode": models.vae.decoder,
        }
    )
    yield counter
    for handle in counter.handles:
        handle.remove()


def reference_windows(padded: int) -> int:
    """UNet windows per step in the reference: 1 for 16 frames, else ceil(N / 12) (closed loop, overlap 4)."""
    return 1 if padded <= 16 else math.ceil(padded / 12)


@pytest.mark.parametrize("windows_per_call", [1, 2])
@pytest.mark.parametrize("frames, padded", [(16, 16), (20, 32), (40, 48)])
def test_calls_per_step(tiny_pipeline, case_a, case_b, calls: Calls, frames: int, padded: int, windows_per_call: int):
    motion = torch.cat([case_b.motion, case_b.motion])[:frames]
    speedups = Speedups(windows_per_call=windows_per_call)
    per_step: list[dict[str, int]] = []
    last: dict[str, int] = {}

    def at_step_end(info: StepInfo) -> None:
        if info.latents is not None:
            now = calls.snapshot()
            per_step.append({key: value - last.get(key, 0) for key, value in now.items()})
            last.update(now)

    video = tiny_pipeline(
        case_a.reference, motion, noise=case_a.noise, num_inference_steps=STEPS, callback=at_step_end, speedups=speedups
    )

    windows = reference_windows(padded)
    expected = {
        "unet_calls": math.ceil(windows / windows_per_call),
        "unet_rows": 2 * 16 * windows,  # both guidance halves of every 16-frame window
        "controlnet_rows": padded,  # every padded frame once, shared by overlapping windows
        "appearance_calls": 1,
        "appearance_rows": 1,  # batch 1: the original's two identical rows computed once
    }
    assert len(per_step) == STEPS
    for step in per_step:
        assert {key: step.get(key, 0) for key in expected} == expected
        assert step.get("vae_decode_rows", 0) == 0
    assert calls.rows["vae_decode"] == frames  # only the kept frames are decoded, once each
    assert calls.calls["vae_decode"] == math.ceil(frames / speedups.decode_batch_size)
    assert video.shape[0] == frames
