"""Context windows in parallel over torch.distributed: each rank denoises its share of every step.

Every rank holds the models and runs the same sampler. Per step each rank computes ControlNet and
UNet for a contiguous share of the windows (neighbours share frames, so ControlNet work is shared
inside a share), the per-frame float32 sums are all-reduced once, and every rank takes the same
scheduler step: the latents stay identical on all ranks without any broadcast. Without a process
group (`WindowShare()`) nothing here communicates and the sampler is exactly the one-process path.

Failures: before every collective the ranks all-reduce a status flag. A rank that fails joins the
next flag round with 1 instead of entering the collective, every rank then learns the failing
rank's message and raises `RankFailed` with it, so no rank is left waiting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
BROADCAST_CHUNK = 1 << 26  # elements per broadcast call: bounds the device copy of a large input


class RankFailed(RuntimeError):
    """One rank failed; every rank raises this with that rank's message (`original`: the error, in threads)."""

    original: BaseException | None = None


def split_windows(count: int, ranks: int, rank: int) -> list[int]:
    """Rank `rank`'s contiguous share of `count` windows, balanced: shares differ by at most one window.

    The first `count % ranks` ranks take one more; with fewer windows than ranks the last ranks get none
    (they still join every all-reduce with zeros). Contiguous shares keep overlapping windows together,
    so their shared frames' ControlNet residuals are computed once.
    """
    base, extra = divmod(count, ranks)
    start = rank * base + min(rank, extra)
    return list(range(start, start + base + (rank < extra)))


@dataclass
class WindowShare:
    """This process's place in the group that shares the windows; the default is one process alone."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collectives run
    owns_group: bool = False  # this object initialised the default process group (and destroys it)

    @classmethod
    def from_environment(cls, device: torch.device) -> tuple[WindowShare, torch.device]:
        """Join the group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT), if any.

        Returns the share and the device this rank computes on: with CUDA, `cuda:LOCAL_RANK` unless
        `device` names an index; NCCL on CUDA, gloo on the CPU. Without WORLD_SIZE > 1: one process.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls(), device
        if device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        collective = device if device.type == "cuda" else torch.device("cpu")
        return cls(dist.get_rank(), dist.get_world_size(), collective, owns), device

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @property
    def leader(self) -> bool:
        """Rank 0: reads the inputs, decodes, writes and reports progress."""
        return self.rank == 0

    def windows(self, count: int) -> list[int]:
        """This rank's window numbers out of `count` (all of them in one process)."""
        return split_windows(count, self.world_size, self.rank)

    # ---- failing together ------------------------------------------------------------------------

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        """An exception raised in the block ends every rank with its message (one process: unchanged)."""
        if not self.parallel:
            yield
            return
        try:
            yield
        except RankFailed:
            raise
        except Exception as error:
            self.fail(error)

    def fail(self, error: BaseException) -> NoReturn:
        """Tell the other ranks (waiting at their next `agree`) that this rank failed; raise everywhere."""
        self._vote(failed=True)
        raise self._failure(error) from error

    def agree(self) -> None:
        """Check that no rank has failed so far; raise `RankFailed` with the failing rank's message if one has."""
        if self.parallel and self._vote(failed=False):
            raise self._failure(None)

    def _failure(self, error: BaseException | None) -> RankFailed:
        errors = self._gather(error)
        rank = next(r for r, failed in enumerate(errors) if failed is not None)
        failure = RankFailed(f"rank {rank} of {self.world_size} failed: {errors[rank]}")
        if isinstance(errors[rank], BaseException):  # threads share the error itself
            failure.original = errors[rank]
        return failure

    # ---- transport: torch.distributed (`local_devices.ThreadShare` overrides these and `_broadcast`) ----

    def _vote(self, failed: bool) -> bool:
        """Whether any rank votes `failed`."""
        flag = torch.tensor([1.0 if failed else 0.0], device=self.device)
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def _gather(self, error: BaseException | None) -> list[Any]:
        """Every rank's error (as `Type: message` text across processes), None where a rank has none."""
        messages: list[str | None] = [None] * self.world_size
        dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}")
        return messages

    def _all_reduce(self, local: torch.Tensor) -> torch.Tensor:
        on_device = local.to(self.device)
        dist.all_reduce(on_device)
        return on_device.to(local.device)

    # ---- collectives ------------------------------------------------------------------------------

    def sum(self, local: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of `local` (float32) over all ranks, in place; one process: `local` itself."""
        if not self.parallel:
            return local
        self.agree()
        return self._all_reduce(local)

    def from_leader(self, produce: Callable[[], T]) -> T:
        """`produce()` run on the leader only, its result (tensors, numbers, strings, tuples) sent to all."""
        if not self.parallel:
            return produce()
        with self.together():
            value = produce() if self.leader else None
        self.agree()
        return self._broadcast(value)

    def _broadcast(self, value: Any) -> Any:
        tensors: list[torch.Tensor] = []

        def strip(item: Any) -> Any:
            if isinstance(item, torch.Tensor):
                tensors.append(item)
                return _TensorSlot(tuple(item.shape), item.dtype)
            if isinstance(item, (tuple, list)):
                return type(item)(strip(x) for x in item)
            return item

        holder = [strip(value) if self.leader else None]
        dist.broadcast_object_list(holder, src=0)

        def fill(item: Any) -> Any:
            if isinstance(item, _TensorSlot):
                return self._broadcast_tensor(tensors.pop(0) if self.leader else item.empty())
            if isinstance(item, (tuple, list)):
                return type(item)(fill(x) for x in item)
            return item

        return fill(holder[0])

    def _broadcast_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        flat = tensor.contiguous().view(-1)
        for start in range(0, flat.numel(), BROADCAST_CHUNK):
            chunk = flat[start : start + BROADCAST_CHUNK].to(self.device)
            dist.broadcast(chunk, src=0)
            flat[start : start + BROADCAST_CHUNK] = chunk.to(flat.device)
        return flat.view(tensor.shape)

    def close(self) -> None:
        """Leave the process group if this share created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


@dataclass(frozen=True)
class _TensorSlot:
    """A tensor's place in a broadcast value: its data follows in `dist.broadcast` calls."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    def empty(self) -> torch.Tensor:
        return torch.empty(self.shape, dtype=self.dtype)
