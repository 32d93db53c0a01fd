"""Peak memory of one run: CUDA's allocator peak, and the process's peak resident set (Linux)."""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path

import torch

from magicanimate_core.memory import return_freed_host_memory

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
M_MMAP_THRESHOLD = -3


def status_bytes(field: str) -> int | None:
    """`VmRSS`, `VmHWM`, ... of this process in bytes; None off Linux."""
    if not STATUS.is_file():
        return None
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


def _libc() -> ctypes.CDLL | None:
    return ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


def release_freed_memory_promptly() -> None:
    """Serve large allocations with mmap so freed tensors leave the resident set (glibc only).

    Without this, memory a warm-up run freed stays resident and a later peak reuses it unseen.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 65536)


class PeakMemory:
    """`start()` before a run and `stop()` after it: peak device bytes and peak host growth in between."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.rss_before = 0

    def start(self) -> None:
        gc.collect()
        return_freed_host_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        if CLEAR_REFS.exists():
            CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
        self.rss_before = status_bytes("VmRSS") or 0

    def stop(self) -> tuple[int, int, int]:
        """(peak device bytes, peak host growth, peak resident set).

        Device: on CUDA the allocator's peak, weights included; on the CPU, where device and host are the
        same memory, the peak resident-set growth. The peak resident set includes the weights on the CPU.
        """
        peak = status_bytes("VmHWM") or 0
        host = peak - self.rss_before
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device), host, peak
        return host, host, peak
