"""Decode a clip on the CPU by Winograd convolutions on single-threaded workers: one frame per thread, or one
frame at a time with each convolution split over the threads.

PyTorch splits each operation of one frame's decode across its threads and synchronises after each; the
VAE decoder's direct 3x3 convolutions already run near the CPU's peak that way. One frame per thread needs
no synchronisation at all, and it lets each thread use Winograd's transform (`models/winograd.py`), whose
multi-threaded use loses its gain to the competing thread pools. Every frame is computed as before by the
same modules; only the order of rounding inside the convolutions changes.

Splitting each operation of one frame in two instead (`split_each_frame`: convolutions by rows, GroupNorms by
channels) keeps one frame in flight, as the default decode does.

The worker threads persist between calls (NNPACK keeps a workspace per thread). While a worker's task runs
the calling thread's operations run on one thread too; its thread count is restored afterwards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

from .memory import available_host_bytes
from .models.channel_split import channel_split_scope
from .models.winograd import winograd_scope

_pool: tuple[ThreadPoolExecutor, int] | None = None  # the shared helper threads and their number
_pool_lock = threading.Lock()


def _helpers(count: int) -> ThreadPoolExecutor:
    """The shared helper threads, grown to at least `count`."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[1] < count:
            if _pool is not None:
                _pool[0].shutdown(wait=True)
            _pool = (ThreadPoolExecutor(max_workers=count, thread_name_prefix="magicanimate-decode"), count)
        return _pool[0]


def thread_count(requested: int, tasks: int, task_bytes: int) -> int:
    """Threads for `tasks` decode calls of `task_bytes` activation memory each: `requested`, but never more
    than the tasks, nor more calls at once than half of the host's available memory holds."""
    threads = min(requested, tasks)
    available = available_host_bytes()
    if available is not None:
        threads = min(threads, available // 2 // max(task_bytes, 1))
    return max(1, threads)


def _single_threaded_in_callers_modes() -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A context for work handed to a helper thread: one torch thread, and the calling thread's autograd and
    inference modes (both are per thread; ComfyUI runs nodes under `torch.inference_mode`)."""
    grad_enabled, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    @contextlib.contextmanager
    def context() -> Iterator[None]:
        torch.set_num_threads(1)
        with torch.inference_mode(inference), torch.set_grad_enabled(grad_enabled):
            yield

    return context


def run_on_threads(tasks: Iterator[Callable[[], None]], threads: int) -> None:
    """Run every task of `tasks`, `threads` at a time (the caller's thread is one), each thread single-threaded.

    The first error stops the other threads before their next task and is raised here.
    """
    lock = threading.Lock()
    failed = threading.Event()
    callers_modes = _single_threaded_in_callers_modes()

    def drain() -> None:
        with callers_modes(), winograd_scope():
            while not failed.is_set():
                with lock:
                    task = next(tasks, None)
                if task is None:
                    return
                try:
                    task()
                except BaseException:
                    failed.set()
                    raise

    previous = torch.get_num_threads()
    try:
        helpers = [_helpers(threads - 1).submit(drain) for _ in range(threads - 1)]
        errors: list[BaseException] = []
        try:
            drain()
        except BaseException as error:
            errors.append(error)
        for helper in helpers:
            try:
                helper.result()
            except BaseException as error:
                errors.append(error)
        if errors:
            raise errors[0]
    finally:
        torch.set_num_threads(previous)


def run_in_parts(parts: list[Callable[[], None]]) -> None:
    """Run `parts` at once, the first on the calling thread and the others on single-threaded helper threads in
    the caller's modes; returns when all are done and raises the first error."""
    callers_modes = _single_threaded_in_callers_modes()

    def helper_part(part: Callable[[], None]) -> None:
        with callers_modes():
            part()

    pending = [_helpers(len(parts) - 1).submit(helper_part, part) for part in parts[1:]]
    try:
        parts[0]()
    finally:
        errors = [future.exception() for future in pending]
    for error in errors:
        if error is not None:
            raise error


@contextlib.contextmanager
def split_each_frame() -> Iterator[None]:
    """Within the block, the calling thread's eligible 3x3 convolutions run by Winograd, split in two by rows,
    and the 1x1 convolutions and GroupNorms of the fast paths by channels, over itself and a helper thread
    (`models/channel_split.py`).

    The calling thread runs on one thread meanwhile: after a multi-threaded operation OpenMP's worker keeps
    spinning on a core for a while, and the helper's half of the next operation would wait for it (one
    64-channel 256x256 convolution after a GroupNorm: 15 -> 24 ms).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with winograd_scope(), channel_split_scope(run_in_parts):
            yield
    finally:
        torch.set_num_threads(previous)
