"""Window schedule, noise tiling, frame padding and trimming."""

from __future__ import annotations

import json

import pytest
import torch

from magicanimate_core.context import uniform_windows, window_weights
from magicanimate_core.noise import draw_noise, tile_noise
from magicanimate_core.preprocess import padded_length

# (N, starts, last window) of the original's closed-loop `uniform` schedule, obtained by executing it.
REFERENCE_WINDOWS = [
    (16, [0], list(range(16))),
    (32, [0, 12, 24], list(range(24, 32)) + list(range(8))),
    (48, [0, 12, 24, 36], list(range(36, 48)) + list(range(4))),
    (64, [0, 12, 24, 36, 48, 60], list(range(60, 64)) + list(range(12))),
    (96, list(range(0, 96, 12)), list(range(84, 96)) + list(range(4))),
    (112, list(range(0, 112, 12)), list(range(108, 112)) + list(range(12))),
    (128, list(range(0, 128, 12)), list(range(120, 128)) + list(range(8))),
]


@pytest.mark.parametrize("num_frames, starts, last", REFERENCE_WINDOWS)
def test_closed_loop_windows_match_the_reference(num_frames: int, starts: list[int], last: list[int]) -> None:
    windows = uniform_windows(num_frames, 16, 4)
    assert [w[0] for w in windows] == starts
    assert windows[-1] == last
    assert all(len(w) == 16 for w in windows)


def test_golden_manifest_windows(golden_dir) -> None:
    for case in ("A", "B"):
        settings = json.loads((golden_dir / f"case_{case}" / "manifest.json").read_text())["settings"]
        assert uniform_windows(settings["frames_padded"], 16, 4) == settings["unet_context_windows"]


def test_window_counts_for_32_frames() -> None:
    counts = [0] * 32
    for window in uniform_windows(32, 16, 4):
        for frame in window:
            counts[frame] += 1
    assert counts == [2] * 8 + [1] * 4 + [2] * 4 + [1] * 8 + [2] * 4 + [1] * 4


def test_open_loop_windows_end_at_the_clip_end() -> None:
    windows = uniform_windows(40, 16, 4, closed_loop=False)
    assert [w[0] for w in windows] == [0, 12, 24]
    assert windows[-1] == list(range(24, 40))


def test_window_weights() -> None:
    assert window_weights(4, "average") == [1.0] * 4
    assert window_weights(6, "pyramid") == [1.0, 2.0, 3.0, 3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="pyramid"):
        window_weights(4, "gaussian")


def test_bad_overlap_is_rejected() -> None:
    with pytest.raises(ValueError, match="context_overlap"):
        uniform_windows(32, 16, 16)


def test_seeded_noise_equals_the_golden_noise(golden_case_a) -> None:
    assert torch.equal(draw_noise(1, 64, 64), golden_case_a.noise)


def test_noise_tiles_with_its_period() -> None:
    noise = torch.randn(5, 4, 2, 3)
    latents = tile_noise(noise, 23)
    assert latents.shape == (1, 4, 23, 2, 3)
    for frame in range(23):
        assert torch.equal(latents[0, :, frame], noise[frame % 5])


def test_noise_shape_is_checked() -> None:
    with pytest.raises(ValueError, match=r"\[K, 4, H/8, W/8\]"):
        tile_noise(torch.randn(4, 3, 2, 2), 16)


@pytest.mark.parametrize("frames, padded", [(1, 16), (16, 16), (17, 32), (20, 32), (42, 48)])
def test_padding_to_whole_noise_periods(frames: int, padded: int) -> None:
    assert padded_length(frames) == padded


def test_output_is_trimmed_to_the_input_length(tiny_pipeline, case_b) -> None:
    video = tiny_pipeline(case_b.reference, case_b.motion[:5], noise=case_b.noise, num_inference_steps=1)
    assert video.shape == (5, 64, 64, 3)
