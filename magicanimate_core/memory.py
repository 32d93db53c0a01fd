"""Memory: a pre-flight estimate of device memory, so a run that cannot fit says so before it starts, and
host memory that CPU runs hand back to the OS."""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from .context import uniform_windows
from .options import SamplingOptions, Speedups
from .preprocess import padded_length

# Rough per-row activation peak of one SD1.5 UNet3D row at 64x64 latents with memory-efficient attention
# (skips kept for the up path ~7 M elements, GEGLU intermediate ~10 M, ResNet temporaries): an estimate,
# deliberately on the high side. VAE decoding keeps ~150 M elements alive per 512x512 frame.
UNET_ELEMENTS_PER_ROW_64 = 24e6
VAE_ELEMENTS_PER_FRAME_512 = 150e6


def estimate_device_bytes(
    weight_bytes: int,
    height: int,
    width: int,
    context_frames: int,
    dtype: torch.dtype,
    speedups: Speedups,
    guidance: bool = True,
    kept_feature_rows: int = 0,
    kept_feature_channels: int = 0,
) -> int:
    """Resident weights plus the larger of one UNet call's and one VAE decode call's activations.

    With deep feature reuse, the features kept from a full step to the next (`kept_feature_rows` rows of
    `kept_feature_channels` channels at latent size, every window of a step) live beside the UNet's work.
    """
    element = torch.finfo(dtype).bits // 8
    latent_area = (height // 8) * (width // 8)
    area = latent_area / 4096
    halves = 2 if guidance and not speedups.sequential_cfg else 1
    rows = halves * context_frames * speedups.windows_per_call
    kept = kept_feature_rows * kept_feature_channels * latent_area * element
    unet = rows * UNET_ELEMENTS_PER_ROW_64 * area * element + kept
    vae = vae_decode_bytes(speedups.decode_batch_size, height, width, dtype)
    return int(weight_bytes + max(unet, vae))


def vae_decode_bytes(frames: int, height: int, width: int, dtype: torch.dtype) -> int:
    """Activation memory of one VAE decode call of `frames` frames at `height` x `width` pixels (an estimate)."""
    element = torch.finfo(dtype).bits // 8
    return int(frames * VAE_ELEMENTS_PER_FRAME_512 * (height // 8) * (width // 8) / 4096 * element)


def available_host_bytes() -> int | None:
    """Memory the OS can still give this process without swapping (Linux `MemAvailable`); None if unknown."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def kept_feature_rows(num_frames: int, context_frames: int, context_overlap: int, options: SamplingOptions) -> int:
    """UNet rows whose deep features live from one full step to the next (`deep_feature_reuse` > 1).

    Every window of a step keeps its own, for both guidance halves: 2 x context_frames x windows.
    """
    if options.deep_feature_reuse <= 1:
        return 0
    windows = uniform_windows(
        padded_length(num_frames), context_frames, context_overlap, closed_loop=options.closed_loop
    )
    return 2 * context_frames * len(windows)


def check_fits(estimate: int, device: torch.device) -> None:
    """Raise `MemoryError` naming the levers when a CUDA device has less free memory than `estimate`."""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    if estimate > free:
        raise MemoryError(
            f"this run needs about {estimate / 2**30:.1f} GiB on {device} but {free / 2**30:.1f} GiB are free. "
            "Levers: dtype fp16/bf16; decode_batch_size=1; windows_per_call=1; sequential_cfg=True (guidance "
            "halves one after the other); offload=True (each model on the GPU only while it runs); "
            "deep_feature_reuse=0 (no features kept between steps); a smaller "
            "size (e.g. 384x384) or context_frames=12."
        )


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)  # glibc only (musl has none)
    except OSError:
        return None


def return_freed_host_memory() -> None:
    """Hand the heap memory a CPU run freed back to the OS (glibc `malloc_trim`), as `torch.cuda.empty_cache`
    does for CUDA: otherwise the heap keeps it resident after the run, and the next run's peak starts from it.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def return_freed_host_memory_before(modules: Iterable[nn.Module]) -> None:
    """Call `return_freed_host_memory` before each of `modules` runs on a CPU (its first input on the CPU).

    Within a run, glibc's heap keeps every page that earlier layers touched and freed, and the up paths, where
    activations are largest, then peak on top of them: without trims before the UNet's up blocks 1-3 and the
    decoder's last, 16-frame runs peaked at 1403-1464 MiB, with them at 1344-1378 (bench/RESULTS.md). The
    output is the same. Registering twice (a copied model
    keeps its hooks) adds nothing.
    """
    for module in modules:
        if _return_freed_before not in module._forward_pre_hooks.values():
            module.register_forward_pre_hook(_return_freed_before)


def _return_freed_before(module: nn.Module, args: tuple) -> None:
    if args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu":
        return_freed_host_memory()
