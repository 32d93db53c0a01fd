"""Output-changing options are off by default, do what they say, and the memory check names the levers."""

from __future__ import annotations

import pytest
import torch

from magicanimate_core import memory
from magicanimate_core.options import SamplingOptions, Speedups


def run(pipe, case, steps: int = 2, **options) -> torch.Tensor:
    return pipe(
        case.reference, case.motion, noise=case.noise, num_inference_steps=steps, options=SamplingOptions(**options)
    )


def test_defaults_are_the_original_semantics() -> None:
    assert SamplingOptions().changed == ()
    assert SamplingOptions(scheduler="dpmpp", closed_loop=False).changed == ("closed_loop=False", "scheduler=dpmpp")


@pytest.mark.parametrize(
    "option",
    [{"closed_loop": False}, {"window_weighting": "pyramid"}, {"scheduler": "dpmpp"}, {"guidance_until": 0.5}],
)
def test_each_option_changes_the_output(tiny_pipeline, case_b, option) -> None:
    reference = run(tiny_pipeline, case_b)
    changed = run(tiny_pipeline, case_b, **option)
    assert torch.isfinite(changed).all()
    assert (changed - reference).abs().max() > 1e-3


def test_guidance_until_zero_equals_guidance_one(tiny_pipeline, case_a) -> None:
    without_cfg = tiny_pipeline(
        case_a.reference, case_a.motion, noise=case_a.noise, num_inference_steps=2, guidance_scale=1.0
    )
    assert (run(tiny_pipeline, case_a, guidance_until=0.0) - without_cfg).abs().max() <= 1e-6


def test_unknown_choices_are_rejected(tiny_pipeline, case_a) -> None:
    with pytest.raises(ValueError, match="choose one of ddim, dpmpp"):
        run(tiny_pipeline, case_a, scheduler="euler")
    with pytest.raises(ValueError, match="guidance_until"):
        SamplingOptions(guidance_until=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        Speedups(windows_per_call=0)


def test_memory_estimate_grows_with_the_work() -> None:
    def estimate(size: int = 512, **speedups) -> int:
        return memory.estimate_device_bytes(0, size, size, 16, torch.float16, Speedups(decode_batch_size=1, **speedups))

    base = estimate()
    assert estimate(windows_per_call=2) > base > estimate(sequential_cfg=True)
    assert estimate(256) < base
    assert memory.estimate_device_bytes(0, 512, 512, 16, torch.float16, Speedups(decode_batch_size=16)) > base


def test_memory_estimate_counts_the_features_deep_feature_reuse_keeps() -> None:
    reuse = SamplingOptions(deep_feature_reuse=2)
    assert memory.kept_feature_rows(64, 16, 4, SamplingOptions()) == 0
    assert memory.kept_feature_rows(64, 16, 4, reuse) == 2 * 16 * 6  # closed loop: windows start every 12 frames
    assert memory.kept_feature_rows(20, 16, 4, reuse) == 2 * 16 * 3  # 20 frames are denoised as 32
    speedups = Speedups(decode_batch_size=1)
    base = memory.estimate_device_bytes(0, 512, 512, 16, torch.float16, speedups)
    kept = memory.estimate_device_bytes(
        0, 512, 512, 16, torch.float16, speedups, kept_feature_rows=192, kept_feature_channels=640
    )
    assert kept - base == 192 * 640 * 64 * 64 * 2  # SD1.5 at 512x512, 64 frames: about 1 GB in fp16


def test_a_run_that_cannot_fit_says_so_first(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 2**34))
    with pytest.raises(
        MemoryError, match=r"needs about 3\.0 GiB.*1\.0 GiB are free.*sequential_cfg=True.*offload=True"
    ):
        memory.check_fits(3 * 2**30, torch.device("cuda"))
    memory.check_fits(2**29, torch.device("cuda"))


def test_weights_already_on_the_device_are_not_counted_twice(tiny_pipeline) -> None:
    weights = sum(p.numel() * p.element_size() for m in tiny_pipeline.models.modules() for p in m.parameters())
    on_device = tiny_pipeline.estimate_device_bytes(64, 64, 16, Speedups())
    home = tiny_pipeline.execution_device
    try:
        tiny_pipeline.execution_device = torch.device("meta")  # as if the weights had still to move there
        assert tiny_pipeline.estimate_device_bytes(64, 64, 16, Speedups()) == on_device + weights
    finally:
        tiny_pipeline.execution_device = home
