"""3x3 convolutions by Winograd's minimal filtering (PyTorch's bundled NNPACK), for single-threaded CPU work.

Winograd's F(6x6, 3x3) computes a 3x3 convolution with about a quarter of the multiplications of the direct
method; it is exact arithmetic, rounded differently (about 1e-5 of the output's scale in float32, below the
golden data's own thread-count noise). On one thread NNPACK's kernels take 0.35-0.55x the time of oneDNN's
direct ones for the VAE decoder's layers (bench/RESULTS.md). Run on a multi-threaded PyTorch, its own thread
pool and the OpenMP workers spinning after each ATen op compete for the cores and most of the gain is lost,
so the path is opt-in per thread: only code inside `winograd_scope()` (the CPU decode of `parallel_decode`:
each convolution split by rows over single-threaded threads, or a frame per such thread) takes it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from .channel_split import split_runner

_scope = threading.local()
_TILE = 6  # rows of one F(6x6, 3x3) output tile: bands of whole tiles sum exactly as one call over the image
BAND_ELEMENTS = 1536 * 1024  # input plus output values per NNPACK call; its workspace (kept by the thread) follows
MAX_KERNEL_PAIRS = 256 * 256  # input x output channels: NNPACK keeps their transformed kernels (64 floats a pair)


@functools.cache
def winograd_available() -> bool:
    """Whether this PyTorch build carries NNPACK and it works on this CPU.

    NNPACK's thread pool takes the calling thread's thread count when it is first used; it is created here
    with one thread, so that each decode worker computes its own frame without waiting for the others.
    """
    if not hasattr(torch, "_nnpack_spatial_convolution"):
        return False
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return bool(torch.backends.nnpack.is_available())
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def winograd_scope() -> Iterator[None]:
    """Let the calling thread's eligible 3x3 convolutions run by Winograd (see the module docstring); inside a
    `channel_split_scope` too, each is split in two by rows."""
    previous = getattr(_scope, "active", False), getattr(_scope, "derived", None)
    _scope.active, _scope.derived = winograd_available(), {}
    try:
        yield
    finally:
        _scope.active, _scope.derived = previous


def derived_kernels(weight: torch.Tensor, derive: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`derive(weight)`, computed once per scope (a decode) rather than once per call (a frame)."""
    derived = getattr(_scope, "derived", None)
    if derived is None:
        return derive(weight)
    version = None if weight.is_inference() else weight._version  # inference tensors (ComfyUI's) have none
    key = (derive, weight.data_ptr(), version)
    if key not in derived:
        derived[key] = derive(weight)
    return derived[key]


def winograd_applies(images: torch.Tensor, weight: torch.Tensor) -> bool:
    """Inside a scope: one contiguous float32 CPU image, kernels of a bounded workspace, and no autograd."""
    return (
        getattr(_scope, "active", False)
        and weight.shape[0] * weight.shape[1] <= MAX_KERNEL_PAIRS
        and images.device.type == "cpu"
        and images.dtype == torch.float32
        and weight.dtype == torch.float32
        and images.dim() == 4
        and images.shape[0] == 1
        and images.is_contiguous()
        and not torch.is_grad_enabled()
    )


def winograd_conv3x3(
    images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """`F.conv2d(images, weight, bias, padding=1)` for `(O, I, 3, 3)` kernels, by Winograd (NNPACK), into
    `out` (of any strides) if given.

    Inside a `channel_split_scope`, the top and bottom halves of the rows (whole 6-row tiles) are computed at
    once. Split by rows, no input value is transformed twice (split by output channels, each half transformed
    the whole input: 1.2x over one thread for the decoder's 256x256 layers, against 1.6x by rows), and each
    output value's sums are those of one call over the image.
    """
    if bias is None:  # NNPACK's entry point wants one
        bias = weight.new_zeros(weight.shape[0])
    weight = weight.contiguous()
    if out is None:
        out = images.new_empty(1, weight.shape[0], *images.shape[-2:])
    height = images.shape[-2]
    middle = _TILE * round(height / 2 / _TILE)  # the tile boundary nearest the middle
    run_parts = split_runner(images, min_values=0)  # the decoder's smallest takes 3 ms a half
    if run_parts is None or not 0 < middle < height:
        _conv3x3_rows(out, images, weight, bias, 0, height)
    else:
        run_parts(
            [
                functools.partial(_conv3x3_rows, out, images, weight, bias, 0, middle),
                functools.partial(_conv3x3_rows, out, images, weight, bias, middle, height),
            ]
        )
    return out


def _conv3x3_rows(
    out: torch.Tensor, images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, first: int, stop: int
) -> None:
    """Output rows `first` (a multiple of the tile) to `stop` of `winograd_conv3x3`, on the calling thread.

    NNPACK sizes its workspace for the whole image of a call and keeps it for the thread's life (about 90 MiB
    for one 128-channel 256x256 image), so large images go through in bands of whole tiles, each with its
    one-row halo: the same sums, with about 10 MiB of image workspace (the transformed kernels add up to
    16 MiB at `MAX_KERNEL_PAIRS`).
    """
    _, channels, height, width = images.shape
    rows = max(BAND_ELEMENTS // ((channels + weight.shape[0]) * width) // _TILE * _TILE, _TILE)
    if first == 0 and stop == height and rows >= height:
        out.copy_(torch._nnpack_spatial_convolution(images, weight, bias, [1, 1]))
        return
    for top in range(first, stop, rows):
        bottom = min(top + rows, stop)
        band = images[:, :, max(top - 1, 0) : bottom + 1]  # the band and its halo rows
        band = F.pad(band, (0, 0, int(top == 0), int(bottom == height))).contiguous()  # zeros past the edges
        out[:, :, top:bottom] = torch._nnpack_spatial_convolution(band, weight, bias, [0, 1])
