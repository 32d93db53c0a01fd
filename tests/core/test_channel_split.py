"""One frame's GroupNorms and 1x1 convolutions split in two by channels over threads: the same numbers as one call,
on two threads, and the plain operation outside a scope, for small images, or for anything but one contiguous
CPU image outside autograd."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from magicanimate_core import parallel_decode
from magicanimate_core.models import channel_split
from magicanimate_core.models.fast_paths import ChannelSplitGroupNorm, PointwiseConv2d, install_fast_paths
from tests.tiny_checkpoints import randomize


class RecordedSplit:
    """A channel-split scope over the caller and a helper thread, recording the threads of each split operation."""

    def __init__(self) -> None:
        self.threads: list[set[str]] = []

    def run_parts(self, parts: list[Callable[[], None]]) -> None:
        names: set[str] = set()

        def named(part: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                names.add(threading.current_thread().name)
                part()

            return run

        parallel_decode.run_in_parts([named(part) for part in parts])
        self.threads.append(names)

    def scope(self) -> contextlib.AbstractContextManager[None]:
        return channel_split.channel_split_scope(self.run_parts)


@pytest.fixture
def split(monkeypatch) -> RecordedSplit:
    """A recorded scope that splits images of any size."""
    monkeypatch.setattr(channel_split, "MIN_SPLIT_VALUES", 0)
    return RecordedSplit()


def _image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("shape", [(1, 12, 8, 8), (1, 12, 64)])  # halves of whole SIMD vectors
def test_group_norm_by_halves_of_its_groups_is_bitwise_one_call(split: RecordedSplit, silu: bool, shape) -> None:
    norm = randomize(nn.GroupNorm(6, 12, eps=1e-6), seed=1)
    image = _image(*shape)
    with torch.no_grad():
        expected = F.silu(norm(image)) if silu else norm(image)
        with split.scope():
            out = channel_split.group_norm(norm, image, silu=silu)
    assert torch.equal(out, expected)
    assert len(split.threads) == 1 and len(split.threads[0]) == 2  # the caller and a helper


def test_group_norm_halves_keep_whole_groups(split: RecordedSplit) -> None:
    norm = randomize(nn.GroupNorm(3, 12), seed=2)  # 4 channels a group: halves of 4 and 8 channels
    image = _image(1, 12, 5, 5)
    with torch.no_grad(), split.scope():
        out = channel_split.group_norm(norm, image)
    assert torch.equal(out, F.group_norm(image, 3, norm.weight, norm.bias, norm.eps))


def test_halves_of_a_partial_simd_vector_round_their_last_values_alike(split: RecordedSplit) -> None:
    norm = randomize(nn.GroupNorm(6, 12), seed=7)
    image = _image(1, 12, 6, 5)  # halves of 180 values: PyTorch's scalar loop computes their last SiLUs
    with torch.no_grad(), split.scope():
        out = channel_split.group_norm(norm, image, silu=True)
    assert torch.allclose(out, F.silu(norm(image)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_convolution_by_output_halves_equals_the_convolution(split: RecordedSplit, bias: bool) -> None:
    conv = randomize(nn.Conv2d(24, 10, 1, bias=bias), seed=3)
    image = _image(1, 24, 13, 17)
    with torch.no_grad():
        expected = F.conv2d(image.double(), conv.weight.double(), None if conv.bias is None else conv.bias.double())
        assert install_fast_paths(conv) == 1 and type(conv) is PointwiseConv2d
        with split.scope():
            out = conv(image)
    assert out.shape == (1, 10, 13, 17) and len(split.threads[0]) == 2
    assert (out.double() - expected).abs().max() <= 1e-5 * expected.abs().max()  # float32 sums, any order


def test_group_norm_module_takes_the_split_inside_a_scope_only(split: RecordedSplit) -> None:
    norm = randomize(nn.GroupNorm(4, 8), seed=4)
    assert install_fast_paths(norm) == 1 and type(norm) is ChannelSplitGroupNorm
    image = _image(1, 8, 4, 4)
    with torch.no_grad():
        outside = norm(image)
        with split.scope():
            inside = norm(image)
    assert torch.equal(inside, outside) and len(split.threads) == 1


def test_only_one_contiguous_cpu_image_outside_autograd_is_split(split: RecordedSplit) -> None:
    norm = randomize(nn.GroupNorm(4, 8), seed=5)
    with split.scope():
        with torch.no_grad():
            channel_split.group_norm(norm, _image(2, 8, 4, 4))  # a batch of two
            channel_split.group_norm(norm, _image(1, 8, 4, 4).to(memory_format=torch.channels_last))
        channel_split.group_norm(norm, _image(1, 8, 4, 4))  # under autograd
        assert channel_split.split_runner(_image(1, 8, 4, 4)) is None
    assert split.threads == []


def test_images_too_small_for_the_handoff_run_on_the_caller(monkeypatch) -> None:
    recorded = RecordedSplit()
    monkeypatch.setattr(channel_split, "MIN_SPLIT_VALUES", 8 * 16)
    norm = randomize(nn.GroupNorm(4, 8), seed=6)
    with torch.no_grad(), recorded.scope():
        channel_split.group_norm(norm, _image(1, 8, 4, 4 - 1))
        assert recorded.threads == []
        channel_split.group_norm(norm, _image(1, 8, 4, 4))
        assert len(recorded.threads) == 1
