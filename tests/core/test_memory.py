"""Memory is bounded by the context window: a longer clip costs only its frames and latents."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from magicanimate_core import memory
from magicanimate_core import pipeline as pipeline_module

REPO = Path(__file__).resolve().parents[2]
SIZE = 256
LATENT_FRAME_BYTES = 4 * (SIZE // 8) ** 2 * 4
# Latent-sized per-frame state (latents, two guidance sums, counts, scheduler temporaries) stays well
# under 16 latent frames; holding ControlNet residuals per frame would add ~32 latent frames per frame.
ALLOWED_STATE_PER_FRAME = 16 * LATENT_FRAME_BYTES


def peak_growth(model_dir: Path, frames: int) -> tuple[int, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory_probe", str(model_dir), str(frames), str(SIZE)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO,
        timeout=600,
    )
    growth, output = result.stdout.split()[-2:]
    return int(growth), int(output)


def test_host_memory_grows_only_by_the_frames(tiny_pretrained_dir: Path) -> None:
    short_growth, short_output = peak_growth(tiny_pretrained_dir, 16)
    long_growth, long_output = peak_growth(tiny_pretrained_dir, 64)
    extra_state = (long_growth - short_growth) - (long_output - short_output)
    assert extra_state <= ALLOWED_STATE_PER_FRAME * (64 - 16), (
        f"peak grew by {long_growth - short_growth} bytes for 48 more frames, of which "
        f"{long_output - short_output} are the returned frames"
    )


def test_control_cache_keeps_only_frames_later_windows_need() -> None:
    """Residuals are dropped once their last window is handed out; kept frames own their memory."""
    import torch

    from magicanimate_core.control_cache import ControlResidualCache

    batches: list[torch.Tensor] = []

    def compute(frames: list[int]) -> list[list[torch.Tensor]]:
        batch = torch.tensor(frames, dtype=torch.float32)[:, None].repeat(1, 3)
        batches.append(batch)
        return [[batch[i], batch[i] * 2] for i in range(len(frames))]

    windows = [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 0, 1]]
    cache = ControlResidualCache(compute, windows)
    first = cache.for_windows(windows[:1])
    assert [level.shape for level in first] == [(1, 3, 4), (1, 3, 4)]
    assert first[1][0, 0].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert sorted(cache.frames) == [0, 1, 2, 3]  # 0, 1 for the wrap-around, 2, 3 for the next window
    batch_storage = batches[0].untyped_storage().data_ptr()
    assert all(level.untyped_storage().data_ptr() != batch_storage for f in cache.frames for level in cache.frames[f])
    cache.for_windows(windows[1:2])
    assert sorted(cache.frames) == [0, 1, 4, 5]
    last = cache.for_windows(windows[2:])
    assert cache.frames == {}
    assert last[0][0, 0].tolist() == [4.0, 5.0, 0.0, 1.0]


def test_conditioning_embeddings_stay_within_their_byte_cap() -> None:
    """Batches are kept while they fit the cap; frames past it are embedded again on every use."""
    import torch
    from torch import nn

    from magicanimate_core.control_cache import ConditioningEmbeddings

    class Doubling(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[int] = []

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            self.rows.append(images.shape[0])
            return images * 2

    controlnet = nn.Module()
    controlnet.controlnet_cond_embedding = Doubling()
    frame_bytes = 3 * 4  # one float32 image of 3 values
    embeddings = ConditioningEmbeddings(controlnet, max_bytes=4 * frame_bytes)

    def images(index: list[int]) -> torch.Tensor:
        return torch.tensor(index, dtype=torch.float32)[:, None].repeat(1, 3)

    for _ in range(2):  # two steps
        first = embeddings([0, 1, 2, 3], images)
        second = embeddings([2, 3, 4, 5, 5], images)  # frames 4, 5 do not fit any more
    assert first[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert second[:, 0].tolist() == [4.0, 6.0, 8.0, 10.0, 10.0]
    assert controlnet.controlnet_cond_embedding.rows == [4, 2, 2]  # frame 5 embedded once per use
    assert embeddings.kept_bytes == 4 * frame_bytes
    with embeddings.passed_to_controlnet():
        assert isinstance(controlnet.controlnet_cond_embedding, nn.Identity)
    assert isinstance(controlnet.controlnet_cond_embedding, Doubling)


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(memory._malloc_trim() is None, reason="needs glibc's malloc_trim (Linux)")
def test_freed_heap_memory_goes_back_to_the_os() -> None:
    chunks = [torch.ones(16 * 1024) for _ in range(2048)]  # 128 MiB in 64 KiB tensors: heap, not mmap
    del chunks[:-1]  # the last one pins the top of the heap, so only a trim can release the rest
    before = _resident_bytes()
    memory.return_freed_host_memory()
    assert before - _resident_bytes() > 64 * 2**20


def test_a_cpu_run_returns_its_freed_memory_before_and_after_the_decode(tiny_pipeline, case_a, monkeypatch) -> None:
    events = []
    decode = tiny_pipeline.decode
    monkeypatch.setattr(pipeline_module, "return_freed_host_memory", lambda: events.append("trim"))
    monkeypatch.setattr(tiny_pipeline, "decode", lambda *args: events.append("decode") or decode(*args))
    tiny_pipeline(case_a.reference, case_a.motion, noise=case_a.noise, num_inference_steps=1)
    assert events == ["trim", "decode", "trim"]


def test_a_cpu_run_returns_freed_memory_before_each_up_block_of_its_peak(tiny_pipeline, case_a, monkeypatch) -> None:
    models = tiny_pipeline.models
    blocks = {id(block): f"unet.up_blocks.{i}" for i, block in enumerate(models.unet.up_blocks)}
    blocks[id(models.vae.decoder.up_blocks[-1])] = "vae.decoder.up_blocks.-1"
    events: list[str] = []
    monkeypatch.setattr(memory, "return_freed_host_memory", lambda: events.append("trim"))
    memory.return_freed_host_memory_before(models.unet.up_blocks[1:])  # already there: registers nothing more
    handles = [
        block.register_forward_pre_hook(lambda module, args: events.append(blocks[id(module)]))
        for block in [*models.unet.up_blocks, models.vae.decoder.up_blocks[-1]]
    ]
    try:
        tiny_pipeline(case_a.reference, case_a.motion, noise=case_a.noise, num_inference_steps=1)
    finally:
        for handle in handles:
            handle.remove()
    trimmed = {events[i + 1] for i, event in enumerate(events[:-1]) if event == "trim"}
    assert trimmed == {
        *(f"unet.up_blocks.{i}" for i in range(1, len(models.unet.up_blocks))),
        "vae.decoder.up_blocks.-1",
    }
    assert events.count("trim") == len(events) - events.count("trim") - events.count("unet.up_blocks.0")


def test_blocks_off_the_cpu_return_no_host_memory(monkeypatch) -> None:
    trims: list[str] = []
    monkeypatch.setattr(memory, "return_freed_host_memory", lambda: trims.append("trim"))
    block = torch.nn.Identity()
    memory.return_freed_host_memory_before([block])
    block(torch.empty(2, device="meta"))  # stands in for a CUDA or MPS input
    assert trims == []
    block(torch.empty(2))
    assert trims == ["trim"]
