"""Model calls per denoising step match the original's per-window CFG schedule, minus the work we skip."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from bench.counters import CallCounter
from magicanimate_core.control_cache import ConditioningEmbeddings
from magicanimate_core.pipeline import MagicAnimatePipeline, Speedups, StepInfo

STEPS = 2


@pytest.fixture
def calls(tiny_pipeline: MagicAnimatePipeline) -> Iterator[CallCounter]:
    counter = CallCounter(tiny_pipeline.models)
    yield counter
    counter.remove()


def reference_windows(padded: int) -> int:
    """UNet windows per step in the reference: 1 for 16 frames, else ceil(N / 12) (closed loop, overlap 4)."""
    return 1 if padded <= 16 else math.ceil(padded / 12)


@pytest.mark.parametrize("windows_per_call", [1, 2])
@pytest.mark.parametrize("frames, padded", [(16, 16), (20, 32), (40, 48)])
def test_calls_per_step(
    tiny_pipeline, case_a, case_b, calls: CallCounter, frames: int, padded: int, windows_per_call: int
):
    motion = torch.cat([case_b.motion, case_b.motion])[:frames]
    speedups = Speedups(windows_per_call=windows_per_call)

    def at_step_end(info: StepInfo) -> None:
        if info.latents is not None:
            calls.end_step()

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
    assert len(calls.steps) == STEPS
    for step in calls.steps:
        assert {key: step.get(key, 0) for key in expected} == expected
        assert step.get("vae_rows", 0) == 0
    assert calls.rows["vae"] == frames  # only the kept frames are decoded, once each
    assert calls.calls["vae"] == math.ceil(frames / speedups.decode_batch_size)
    assert video.shape[0] == frames


def test_conditioning_is_embedded_once_per_motion_frame_and_call(tiny_pipeline, case_a, case_b, monkeypatch):
    """On the CPU, ControlNet's conditioning embedding runs at the first step only, once per distinct motion
    frame (the padding repeats the last one), and the video is bitwise the one ControlNet gives when it
    embeds every padded frame itself at every step."""
    embedded_rows: list[int] = []
    embedding = tiny_pipeline.models.controlnet.controlnet_cond_embedding
    hook = embedding.register_forward_hook(lambda module, args, out: embedded_rows.append(args[0].shape[0]))

    def animate() -> torch.Tensor:
        return tiny_pipeline(case_a.reference, case_b.motion, noise=case_a.noise, num_inference_steps=STEPS)

    try:
        kept = animate()
        rows_kept = sum(embedded_rows)
        embedded_rows.clear()
        monkeypatch.setattr(ConditioningEmbeddings, "applies_to", staticmethod(lambda controlnet: False))
        recomputed = animate()
    finally:
        hook.remove()
    assert case_b.motion.shape[0] == 20
    assert rows_kept == 20
    assert sum(embedded_rows) == 32 * STEPS
    assert torch.equal(kept, recomputed)
