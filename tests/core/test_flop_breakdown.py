"""The analytic FLOP model's per-component breakdown (bench/flops.py)."""

from __future__ import annotations

import pytest

from bench import flops
from magicanimate_core.options import SamplingOptions, Speedups

SHAPES = [flops.RunShape(512, 512, 16, 25), flops.RunShape(512, 512, 64, 25), flops.RunShape(256, 256, 48, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cached_kv", [True, False])
def test_breakdowns_sum_to_totals(shape: flops.RunShape, cached_kv: bool) -> None:
    mine = flops.ours_breakdown(shape, Speedups(), SamplingOptions(), cached_kv)
    assert tuple(mine) == flops.COMPONENTS
    assert sum(mine.values()) == flops.ours(shape, Speedups(), SamplingOptions(), cached_kv)
    theirs = flops.reference_breakdown(shape)
    assert tuple(theirs) == flops.COMPONENTS
    assert sum(theirs.values()) == flops.reference(shape)


@pytest.mark.parametrize("frames", [16, 64])
def test_original_unet_costs_more_per_frame_at_512(frames: int) -> None:
    shape = flops.RunShape(512, 512, frames, 25)
    mine = flops.ours_breakdown(shape, Speedups(), SamplingOptions())["unet"]
    assert flops.reference_breakdown(shape)["unet"] > 1.2 * mine


def test_table_lists_every_component() -> None:
    text = flops.table(flops.RunShape(512, 512, 16, 25))
    for name in (*flops.COMPONENTS, "total"):
        assert f"\n{name} " in text
