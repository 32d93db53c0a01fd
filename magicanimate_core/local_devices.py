"""Window shares on several devices of one machine, from one process: one thread and one model copy per device.

The threads run the same sampler as torch.distributed ranks do (`distributed.py`): each denoises its
share of the windows of every step, the per-frame sums are added in rank order (so every copy takes the
same scheduler step), and the first device decodes. Only the transport differs: a barrier and shared
slots instead of collectives. An error in one thread ends them all; the caller gets that error itself.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .distributed import RankFailed, WindowShare
from .pipeline import MagicAnimatePipeline

_NETWORKS = ("unet", "appearance_encoder", "controlnet", "vae", "text_encoder")
# copies of a pipeline's networks per (position in the device list, device), kept while the pipeline lives
_COPIES: weakref.WeakKeyDictionary[MagicAnimatePipeline, dict[tuple[int, torch.device], MagicAnimatePipeline]] = (
    weakref.WeakKeyDictionary()
)


class _Rendezvous:
    """Slots the threads fill, with a barrier on each side so no slot is reused before all have read it."""

    def __init__(self, size: int) -> None:
        self.barrier = threading.Barrier(size)
        self.slots: list[Any] = [None] * size

    def exchange(self, rank: int, value: Any) -> list[Any]:
        self.slots[rank] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()
        return values


@dataclass
class ThreadShare(WindowShare):
    """A `WindowShare` whose ranks are threads of this process."""

    rendezvous: _Rendezvous | None = None

    def _vote(self, failed: bool) -> bool:
        return any(self._exchange(failed))

    def _gather(self, error: BaseException | None) -> list[Any]:
        return self._exchange(error)

    def _all_reduce(self, local: torch.Tensor) -> torch.Tensor:
        parts = self._exchange(local)
        total = parts[0].to(local.device, copy=True)
        for part in parts[1:]:  # the same order on every rank: every copy gets the same bits
            total += part.to(local.device)
        return total

    def _broadcast(self, value: Any) -> Any:
        return self._exchange(value)[0]

    def _exchange(self, value: Any) -> list[Any]:
        assert self.rendezvous is not None
        return self.rendezvous.exchange(self.rank, value)


def replicate(module: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of `module` with its parameters and buffers copied straight to `device`."""
    memo: dict[int, Any] = {}
    for parameter in module.parameters():
        memo[id(parameter)] = nn.Parameter(parameter.detach().to(device, copy=True), parameter.requires_grad)
    for buffer in module.buffers():
        memo[id(buffer)] = buffer.to(device, copy=True)
    return copy.deepcopy(module, memo)


def copy_pipeline(pipeline: MagicAnimatePipeline, device: torch.device) -> MagicAnimatePipeline:
    """A pipeline on `device` with its own copy of every network (the tokenizer is shared)."""
    models = pipeline.models
    copies = {name: replicate(getattr(models, name), device) for name in _NETWORKS}
    return MagicAnimatePipeline(dataclasses.replace(models, **copies)).to(device)


def pipelines_for(pipeline: MagicAnimatePipeline, devices: Sequence[torch.device]) -> list[MagicAnimatePipeline]:
    """One pipeline per entry of `devices`: `pipeline` itself for the first entry on its device, cached copies
    for the others (a device listed twice gets two copies)."""
    cache = _COPIES.setdefault(pipeline, {})
    result = []
    for position, device in enumerate(devices):
        if device == pipeline.device and pipeline not in result:
            result.append(pipeline)
            continue
        if (position, device) not in cache:
            cache[(position, device)] = copy_pipeline(pipeline, device)
        result.append(cache[(position, device)])
    return result


def release_copies(pipeline: MagicAnimatePipeline) -> None:
    """Drop the copies `pipelines_for` made of `pipeline`, freeing their memory."""
    _COPIES.pop(pipeline, None)


def animate_on_devices(pipelines: Sequence[MagicAnimatePipeline], *args: Any, **kwargs: Any) -> torch.Tensor:
    """`pipelines[0](*args, **kwargs)` with the windows shared by all `pipelines`, one thread each.

    Takes the pipeline's arguments (not `share`); `callback` (progress, cancel) runs on the first
    pipeline's thread only, which also decodes. Returns the first pipeline's frames; an error on any
    device is raised here as itself.
    """
    if len(pipelines) == 1:
        return pipelines[0](*args, **kwargs)
    speedups = kwargs.get("speedups")
    if speedups is not None and speedups.offload:
        raise ValueError(
            f"offload keeps one network at a time on one device; it cannot share windows between "
            f"{len(pipelines)} devices: turn offload off or list one device"
        )
    rendezvous = _Rendezvous(len(pipelines))
    results: list[Any] = [None] * len(pipelines)
    callback = kwargs.pop("callback", None)

    def run(rank: int) -> None:
        device = pipelines[rank].device
        share = ThreadShare(rank, len(pipelines), device, rendezvous=rendezvous)
        on_device = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        try:
            with on_device:  # kernels that read the current device use this thread's
                results[rank] = pipelines[rank](*args, **kwargs, callback=callback if rank == 0 else None, share=share)
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread below
            results[rank] = error
            rendezvous.barrier.abort()  # a thread that failed outside the protocol must not leave others waiting

    threads = [
        threading.Thread(target=run, args=(rank,), name=f"magicanimate-rank{rank}") for rank in range(1, len(pipelines))
    ]
    for thread in threads:
        thread.start()
    run(0)  # the leader in the calling thread: ComfyUI's progress and cancel work as in one process
    for thread in threads:
        thread.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise _first_cause(errors)
    return results[0]


def _first_cause(errors: list[BaseException]) -> BaseException:
    """The error that started it: a thread's own error, not the `RankFailed` or broken barrier it caused."""
    for error in errors:
        if isinstance(error, RankFailed) and error.original is not None:
            return error.original
    for error in errors:
        if not isinstance(error, (RankFailed, threading.BrokenBarrierError)):
            return error
    return errors[0]
