"""Deep feature reuse (DeepCache-style): off by default, exact at 1, close and cheaper at 2."""

from __future__ import annotations

import math

import pytest
import torch

from magicanimate_core.options import SamplingOptions
from tests.nodes.conftest import load_pack

PSNR_BOUND = 35.0  # measured 41.2 dB on case B, 4 steps (tiny model)


def run(pipe, case, steps: int = 4, **options) -> torch.Tensor:
    return pipe(
        case.reference, case.motion, noise=case.noise, num_inference_steps=steps, options=SamplingOptions(**options)
    )


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / (a - b).pow(2).mean().item())


def test_reuse_every_step_is_the_default(tiny_pipeline, case_b) -> None:
    assert torch.equal(run(tiny_pipeline, case_b, deep_feature_reuse=1), run(tiny_pipeline, case_b))


def test_reuse_every_two_steps_is_close_and_skips_deep_blocks(tiny_pipeline, case_b) -> None:
    unet = tiny_pipeline.models.unet
    calls = {"deep": 0, "shallow": 0}
    hooks = [
        unet.down_blocks[-1].register_forward_hook(lambda *_: calls.__setitem__("deep", calls["deep"] + 1)),
        unet.up_blocks[-1].register_forward_hook(lambda *_: calls.__setitem__("shallow", calls["shallow"] + 1)),
    ]
    try:
        reference = run(tiny_pipeline, case_b)
        full = dict(calls)
        reused = run(tiny_pipeline, case_b, deep_feature_reuse=2)
    finally:
        for hook in hooks:
            hook.remove()
    cheap = {name: calls[name] - full[name] for name in calls}
    assert cheap["shallow"] == full["shallow"]  # every UNet call still runs the last up block
    assert cheap["deep"] * 2 == full["deep"]  # 4 steps: the deep blocks run on steps 0 and 2 only
    assert not torch.equal(reused, reference)
    assert psnr(reused, reference) > PSNR_BOUND
    assert tiny_pipeline.deep_features.every == 1  # the kept features are freed after the call


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_values_raise_a_clear_error(value) -> None:
    with pytest.raises(ValueError, match="deep_feature_reuse must be a whole number"):
        SamplingOptions(deep_feature_reuse=value)


def test_node_input_maps_to_the_option() -> None:
    node = load_pack().NODE_CLASS_MAPPINGS["MagicAnimate_SamplerOptions"]()
    assert "deep_feature_reuse" in node.INPUT_TYPES()["optional"]
    (settings,) = node.build("ddim", "uniform", True, 1.0, False, False, 0, True, deep_feature_reuse=3)
    assert settings.sampling.deep_feature_reuse == 3
    assert settings.sampling.changed == ("deep_feature_reuse=3",)
