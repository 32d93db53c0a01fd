"""Streaming extraction: output geometry, person selection, smoothing, progress/cancel, CLI."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from densepose_node.backends import Estimator
from densepose_node.extract import extract_densepose, smooth_labels
from densepose_node.instances import DensePoseInstances
from densepose_node.render import palette
from magicanimate_core.media.fit import square_label_fit


class FakeEstimator(Estimator):
    """One person per frame, label 3 over its box, plus a fainter label-9 person overlapping it."""

    name = "fake"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def detect(self, frames_rgb: Sequence[np.ndarray], score_threshold: float | None = None):
        self.batches.append(len(frames_rgb))
        coarse = torch.zeros(2, 2, 112, 112)
        coarse[:, 1] = 1.0
        fine = torch.zeros(2, 25, 112, 112)
        fine[0, 3], fine[1, 9] = 1.0, 1.0
        boxes = torch.tensor([[0.0, 0.0, 20.0, 10.0], [10.0, 0.0, 30.0, 10.0]])
        return [
            DensePoseInstances(frame.shape[:2], boxes, torch.tensor([0.9, 0.2]), coarse, fine) for frame in frames_rgb
        ]


def test_smoothing_is_a_three_frame_majority():
    frames = [np.full((1, 3), v, np.uint8) for v in (1, 2, 1, 3, 4)]
    frames[2][0, 2] = 7
    smoothed = list(smooth_labels(iter(frames)))
    assert [f[0, 0] for f in smoothed] == [1, 1, 1, 3, 4]  # 2 between two 1s flips; 1|3|4 keep their own
    assert smoothed[2][0, 2] == 7 and len(list(smooth_labels([]))) == 0


def test_extract_streams_with_options():
    estimator, done = FakeEstimator(), []
    frames = (np.zeros((10, 40, 3), np.uint8) for _ in range(5))
    out = list(extract_densepose(frames, estimator, max_people=1, batch_size=2, progress=done.append))
    assert estimator.batches == [2, 2, 1] and done == [1, 2, 3, 4, 5]
    assert out[0].shape == (10, 40, 3) and np.all(out[0][:, 25] == [68, 1, 84])  # second person dropped
    crop = square_label_fit("crop", 8)
    blank = [np.zeros((10, 40, 3), np.uint8)]
    both = next(extract_densepose(blank, estimator, fit_canvas=crop, colormap="parula-black"))
    assert both.shape == (8, 8, 3) and np.all(both == palette("parula-black")[9])  # centre: the later person


def test_progress_may_cancel():
    def cancel(done: int) -> None:
        if done == 2:
            raise KeyboardInterrupt("cancelled")

    frames = (np.zeros((4, 4, 3), np.uint8) for _ in range(10))
    produced = []
    with pytest.raises(KeyboardInterrupt):
        for frame in extract_densepose(frames, FakeEstimator(), progress=cancel):
            produced.append(frame)
    assert len(produced) == 1


def test_cli_extract(sample_inputs, tmp_path):
    pytest.importorskip("av", reason="PyAV is needed for video files")
    from densepose_node.cli import main
    from magicanimate_core.media.video_io import read_video

    weights = tmp_path / "tiny_densepose.pkl"
    shutil.copy(sample_inputs / "densepose" / "weights" / "tiny_densepose.pkl", weights)
    video = sample_inputs / "densepose" / "video" / "synthetic_walk_256.mp4"
    output = tmp_path / "out.mp4"
    args = ["extract", str(video), "-o", str(output), "--weights", str(weights), "--backend", "builtin"]
    assert main([*args, "--frame-load-cap", "2", "--fit", "pad", "--size", "64"]) == 0
    info, frames = read_video(output)
    frames = list(frames)
    assert len(frames) == 2 and frames[0].shape == (64, 64, 3) and info.output_fps == pytest.approx(25)
    assert main(args) == 2  # the output exists: a clear error, nothing overwritten
