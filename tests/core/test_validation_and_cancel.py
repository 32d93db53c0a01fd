"""Bad inputs fail with errors that name the problem; a cancelled run leaves nothing behind."""

from __future__ import annotations

import pytest
import torch

from magicanimate_core.pipeline import StepInfo
from tests.core.expected_slices import assert_matches_recorded


def test_context_frames_above_24_is_a_clear_error(tiny_pipeline, case_a) -> None:
    with pytest.raises(ValueError, match="context_frames=25 is outside 1..24"):
        tiny_pipeline(case_a.reference, case_a.motion, context_frames=25, num_inference_steps=1)


def test_24_frame_windows_run(tiny_pipeline, case_a) -> None:
    motion = torch.cat([case_a.motion, case_a.motion[:8]])
    video = tiny_pipeline(case_a.reference, motion, context_frames=24, context_overlap=4, num_inference_steps=1)
    assert video.shape == (24, 64, 64, 3) and torch.isfinite(video).all()


@pytest.mark.parametrize(
    "reference, motion, message",
    [
        (torch.rand(64, 64, 3), torch.rand(0, 64, 64, 3), "no frames"),
        (torch.rand(64, 64, 3), torch.rand(4, 32, 64, 3), "fit both to the same size"),
        (torch.rand(60, 60, 3), torch.rand(4, 60, 60, 3), "multiple of 8"),
        (torch.rand(2, 64, 64, 3), torch.rand(4, 64, 64, 3), "one RGB image"),
        (torch.rand(64, 64, 3), torch.rand(4, 64, 64, 4), r"RGB frames \[F, H, W, 3\]"),
    ],
)
def test_bad_inputs(tiny_pipeline, reference, motion, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_pipeline(reference, motion, num_inference_steps=1)


def test_noise_of_the_wrong_size(tiny_pipeline, case_a) -> None:
    with pytest.raises(ValueError, match=r"must be \[K, 4, 8, 8\]"):
        tiny_pipeline(case_a.reference, case_a.motion, noise=torch.randn(16, 4, 4, 4), num_inference_steps=1)


class Cancelled(Exception):
    pass


def test_cancelling_mid_run_leaves_no_state(tiny_pipeline, case_b) -> None:
    calls: list[StepInfo] = []

    def cancel_in_second_step(info: StepInfo) -> None:
        calls.append(info)
        if info.step == 1 and info.call == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        tiny_pipeline(
            case_b.reference, case_b.motion, noise=case_b.noise, num_inference_steps=3, callback=cancel_in_second_step
        )
    assert [(i.step, i.call) for i in calls] == [(0, 1), (0, 2), (0, 3), (0, 3), (1, 1), (1, 2)]
    assert tiny_pipeline.reference_state.bank is None and tiny_pipeline.reference_state.cond_rows is None
    video = tiny_pipeline(case_b.reference, case_b.motion, noise=case_b.noise, num_inference_steps=3)
    assert_matches_recorded(video, "case_b")  # the same output as an uncancelled run


def test_progress_reports(tiny_pipeline, case_a) -> None:
    infos: list[StepInfo] = []
    tiny_pipeline(case_a.reference, case_a.motion, noise=case_a.noise, num_inference_steps=2, callback=infos.append)
    assert [round(i.progress, 3) for i in infos] == [0.5, 0.5, 1.0, 1.0]
    assert infos[-1].latents is not None and infos[-1].latents.shape == (1, 4, 16, 8, 8)
