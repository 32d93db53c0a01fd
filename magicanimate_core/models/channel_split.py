"""One frame's channel-separable work split in two over threads: the CPU decode's second core.

Inside `channel_split_scope(run_parts)`, the operations below compute the two halves of their output channels
at once through `run_parts` (`parallel_decode.run_in_parts`: the calling thread and a helper, each on one
torch thread). Each output channel is computed by the same kernel from the same values as in one call over all
channels. GroupNorm is then bitwise the same wherever each half is a whole number of SIMD vectors (every layer of
the VAE decoder, whose images are 32x32 and larger); elsewhere PyTorch's scalar loop computes the last few values of
a half, which may round differently in the last bit. The 1x1 convolution's products are the BLAS's, whose summation
order for small matrices may depend on the row count (last-bit differences; the decoder's were bitwise equal).
Outside a scope, for small images, or for anything but one contiguous CPU image outside autograd, they are the
plain operation.

- `group_norm`: GroupNorm by halves of its groups, optionally fused with the SiLU that follows it (the SiLU
  writes the output, so the split costs no extra pass).
- `pointwise_conv`: a 1x1 convolution as two matrix products, by output channels.
- `split_runner`: for other operations (the Winograd 3x3 convolution splits its rows with it: split by output
  channels, each half would transform the whole input).

Images of fewer than `MIN_SPLIT_VALUES` values are not worth the handoff and run on the calling thread. Lone
SiLUs and residual adds are not split: they are bound by memory bandwidth, which one core nearly saturates
(an add of 4 M values took 0.75 ms on one thread, 0.66 ms on two).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

RunParts = Callable[[list[Callable[[], None]]], None]  # runs every task of the list, returns when all are done

# Handing a part to the helper thread costs about 0.1 ms, and more when the host is busy: a GroupNorm and SiLU
# of 256 K values took 0.20 ms in one call and 0.28 ms split, of 1 M values 0.90 and 0.67 ms, of 2 M 2.2 and
# 1.8 ms, of 4 M 6.6 and 4.1 ms (2 cores).
MIN_SPLIT_VALUES = 1 << 21

_scope = threading.local()


@contextlib.contextmanager
def channel_split_scope(run_parts: RunParts) -> Iterator[None]:
    """Within the block, the calling thread's operations of this module run in two halves through `run_parts`."""
    previous = getattr(_scope, "run_parts", None)
    _scope.run_parts = run_parts
    try:
        yield
    finally:
        _scope.run_parts = previous


def split_runner(images: torch.Tensor, min_values: int | None = None) -> RunParts | None:
    """The scope's `run_parts` when `images` is one contiguous CPU image of at least `min_values` values
    (`MIN_SPLIT_VALUES` by default) outside autograd, else None."""
    run_parts = getattr(_scope, "run_parts", None)
    if (
        run_parts is None
        or images.numel() < (MIN_SPLIT_VALUES if min_values is None else min_values)
        or images.device.type != "cpu"
        or images.shape[0] != 1
        or not images.is_contiguous()
        or torch.is_grad_enabled()
    ):
        return None
    return run_parts


def run_halves(run_parts: RunParts, channels: int, part: Callable[[slice], None], multiple: int = 1) -> None:
    """`part(first)` and `part(second)` at once, for the two halves of `channels` (the first a multiple of
    `multiple` long)."""
    half = channels // 2 // multiple * multiple
    run_parts([functools.partial(part, slice(0, half)), functools.partial(part, slice(half, channels))])


def group_norm(norm: nn.GroupNorm, images: torch.Tensor, silu: bool = False) -> torch.Tensor:
    """`norm(images)`, then SiLU if `silu`; inside a scope, by halves of the groups."""
    run_parts = split_runner(images)
    if run_parts is None or norm.num_groups < 2 or not norm.affine:
        normed = F.group_norm(images, norm.num_groups, norm.weight, norm.bias, norm.eps)
        return F.silu(normed, inplace=True) if silu else normed
    out = torch.empty_like(images)
    per_group = norm.num_channels // norm.num_groups

    def part(channels: slice) -> None:
        groups = (channels.stop - channels.start) // per_group
        normed = F.group_norm(images[:, channels], groups, norm.weight[channels], norm.bias[channels], norm.eps)
        if silu:
            torch.ops.aten.silu.out(normed, out=out[:, channels])
        else:
            out[:, channels] = normed

    run_halves(run_parts, norm.num_channels, part, multiple=per_group)
    return out


def pointwise_conv(conv: nn.Conv2d, images: torch.Tensor) -> torch.Tensor | None:
    """A 1x1, stride-1, unpadded `conv(images)` inside a scope, as two matrix products by output channels
    (`bias + weight @ pixels`); None outside a scope."""
    run_parts = split_runner(images)
    if run_parts is None or images.dim() != 4 or images.dtype != conv.weight.dtype:
        return None
    _, channels, height, width = images.shape
    pixels = images.view(channels, height * width)
    weight = conv.weight.view(conv.out_channels, channels)
    out = images.new_empty(1, conv.out_channels, height, width)
    rows = out.view(conv.out_channels, height * width)

    def part(outputs: slice) -> None:
        if conv.bias is None:
            torch.mm(weight[outputs], pixels, out=rows[outputs])
        else:
            torch.addmm(conv.bias[outputs, None], weight[outputs], pixels, out=rows[outputs])

    run_halves(run_parts, conv.out_channels, part)
    return out
