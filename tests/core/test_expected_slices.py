"""Whole runs on the generated checkpoints agree with the recorded output slices (see expected_slices.py)."""

from __future__ import annotations

import pytest

from tests.core.expected_slices import assert_matches_recorded


@pytest.mark.parametrize("case_name", ["case_a", "case_b"])
def test_output_slices_match_the_recorded_run(request, tiny_pipeline, case_name: str) -> None:
    case = request.getfixturevalue(case_name)
    video = tiny_pipeline(case.reference, case.motion, noise=case.noise, num_inference_steps=3, guidance_scale=7.5)
    assert video.shape == (case.motion.shape[0], 64, 64, 3)
    assert_matches_recorded(video, case_name)
