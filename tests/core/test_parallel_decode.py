"""The CPU decode by Winograd on several threads (a frame per thread, or each convolution split over them): the
same frames as one thread, the thread count restored, errors raised."""

from __future__ import annotations

import threading

import pytest
import torch

from magicanimate_core import memory, parallel_decode
from magicanimate_core.models.winograd import winograd_available, winograd_conv3x3, winograd_scope
from magicanimate_core.options import CPU_CHANNELS_LAST, WINOGRAD_DECODE_MAX_THREADS, Speedups

needs_nnpack = pytest.mark.skipif(not winograd_available(), reason="this PyTorch build has no NNPACK")


def _latents(frames: int) -> torch.Tensor:
    return torch.randn(1, 4, frames, 8, 8, generator=torch.Generator().manual_seed(frames)) * 5


@needs_nnpack
def test_frames_decoded_on_threads_equal_one_thread_decoding_them_in_turn(tiny_pipeline, nnpack_calls) -> None:
    tiny_pipeline._prepare(Speedups(decode_threads=3))
    latents = _latents(5)
    threaded = tiny_pipeline.decode(latents, 5, Speedups(decode_threads=3))
    assert torch.get_num_threads() == 2  # the caller's count is back
    threads = {thread for thread, _ in nnpack_calls}
    nnpack_calls.clear()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), winograd_scope():
            one_thread = tiny_pipeline.decode(latents, 5, Speedups(winograd_decode=False))
    finally:
        torch.set_num_threads(previous)
    assert len(threads) > 1 and nnpack_calls  # every thread took the Winograd path, whichever frames it drew
    assert torch.equal(threaded, one_thread)
    direct = tiny_pipeline.decode(latents, 5, Speedups(winograd_decode=False))
    assert (threaded - direct).abs().max() <= 1e-4  # Winograd against direct convolutions: rounding only


def test_an_error_in_one_thread_stops_the_others_and_is_raised(monkeypatch) -> None:
    ran: list[int] = []
    started = threading.Barrier(2)

    def task(index: int) -> None:
        if index < 2:
            started.wait(timeout=10)  # both threads are busy before the error
        if index == 1:
            raise ValueError("frame 1 is broken")
        ran.append(index)

    tasks = iter([lambda i=i: task(i) for i in range(40)])
    with pytest.raises(ValueError, match="frame 1 is broken"):
        parallel_decode.run_on_threads(tasks, 2)
    assert torch.get_num_threads() == 2
    assert len(ran) < 39  # the other thread stopped before draining the rest


def test_thread_count_is_capped_by_the_tasks_and_by_half_the_free_memory(monkeypatch) -> None:
    monkeypatch.setattr(parallel_decode, "available_host_bytes", lambda: 10 * 2**30)
    assert parallel_decode.thread_count(8, 3, 2**30) == 3
    assert parallel_decode.thread_count(8, 16, 2**30) == 5
    assert parallel_decode.thread_count(8, 16, 20 * 2**30) == 1
    monkeypatch.setattr(parallel_decode, "available_host_bytes", lambda: None)
    assert parallel_decode.thread_count(8, 16, 20 * 2**30) == 8


def test_decode_memory_estimate_scales_with_frames_and_area() -> None:
    one = memory.vae_decode_bytes(1, 512, 512, torch.float32)
    assert one == int(memory.VAE_ELEMENTS_PER_FRAME_512 * 4)
    assert memory.vae_decode_bytes(2, 256, 256, torch.float16) == one // 4


def test_threaded_decode_is_a_cpu_lever_that_keeps_the_vae_contiguous() -> None:
    assert not Speedups().threaded_decode("cpu") and Speedups(decode_threads=2).threaded_decode("cpu")
    assert not Speedups(decode_threads=4).threaded_decode("cuda")
    assert Speedups(decode_threads=2).channels_last_models("cpu") == CPU_CHANNELS_LAST - {"vae"}
    assert Speedups(winograd_decode=False).channels_last_models("cpu") == CPU_CHANNELS_LAST
    assert "decode_threads=3" in Speedups(decode_threads=3).enabled
    with pytest.raises(ValueError, match="decode_threads"):
        Speedups(decode_threads=0)


@needs_nnpack
def test_split_convolutions_by_rows_equal_one_call_and_run_on_two_threads(nnpack_calls) -> None:
    images = torch.randn(1, 24, 40, 9, generator=torch.Generator().manual_seed(4))
    weight = torch.randn(10, 24, 3, 3, generator=torch.Generator().manual_seed(5))
    bias = torch.randn(10, generator=torch.Generator().manual_seed(6))
    previous = torch.get_num_threads()
    with torch.no_grad():
        with parallel_decode.split_each_frame():
            assert torch.get_num_threads() == 1  # no OpenMP worker spinning against the helper
            split = winograd_conv3x3(images, weight, bias)
        assert torch.get_num_threads() == previous
        threads = {thread for thread, _ in nnpack_calls}
        with winograd_scope():
            whole = winograd_conv3x3(images, weight, bias)
    assert "MainThread" in threads and len(threads) > 1  # the caller and a helper
    # rows 0-18 (3 whole tiles) with the halo below and a zero row above; rows 18-40 with the halo above
    assert sorted(shape for _, shape in nnpack_calls[:2]) == [(1, 24, 20, 9), (1, 24, 24, 9)]
    assert torch.equal(split, whole)  # each output value's sums are those of one call


def test_an_error_in_a_part_is_raised_after_every_part_is_done() -> None:
    done: list[str] = []

    def broken() -> None:
        raise ValueError("the helper's half is broken")

    def slow() -> None:
        threading.Event().wait(0.2)
        done.append("caller")

    with pytest.raises(ValueError, match="helper's half"):
        parallel_decode.run_in_parts([slow, broken])
    assert done == ["caller"]
    with pytest.raises(ValueError, match="caller's half"):
        parallel_decode.run_in_parts([lambda: (_ for _ in ()).throw(ValueError("caller's half")), slow])
    assert done == ["caller", "caller"]  # the helper's part finished before the error was raised


@needs_nnpack
def test_default_cpu_decode_splits_each_convolution_over_two_threads(tiny_pipeline, nnpack_calls) -> None:
    latents = _latents(3)
    tiny_pipeline._prepare(Speedups())
    split = tiny_pipeline.decode(latents, 3, Speedups())
    threads = {thread for thread, _ in nnpack_calls}
    assert "MainThread" in threads and len(threads) > 1 and torch.get_num_threads() == 2
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), winograd_scope():
            one_thread = tiny_pipeline.decode(latents, 3, Speedups(winograd_decode=False))
    finally:
        torch.set_num_threads(2)
    assert (split - one_thread).abs().max() <= 1e-6  # halves of the channels: the same sums, tails aside
    tiny_pipeline._prepare(Speedups(winograd_decode=False))
    direct = tiny_pipeline.decode(latents, 3, Speedups(winograd_decode=False))
    assert (split - direct).abs().max() <= 1e-4  # Winograd against direct convolutions: rounding only


def test_split_decode_is_the_cpu_default_up_to_two_threads_and_keeps_the_vae_contiguous() -> None:
    assert Speedups().split_decode("cpu") and "winograd_decode" in Speedups().enabled
    assert Speedups().channels_last_models("cpu") == CPU_CHANNELS_LAST - {"vae"}
    assert not Speedups().split_decode("cuda") and not Speedups(winograd_decode=False).split_decode("cpu")
    assert not Speedups(decode_threads=2).split_decode("cpu")  # a frame per thread instead
    previous = torch.get_num_threads()
    torch.set_num_threads(WINOGRAD_DECODE_MAX_THREADS + 1)
    try:
        assert not Speedups().split_decode("cpu")  # not measured there: oneDNN on all threads
    finally:
        torch.set_num_threads(previous)


@needs_nnpack
@pytest.mark.parametrize("threads", [1, 2])
def test_decodes_under_inference_mode_as_comfyui_runs_them(tiny_pipeline, threads: int) -> None:
    speedups = Speedups(decode_threads=threads)  # 1: each convolution split over threads, 2: a frame per thread
    tiny_pipeline._prepare(speedups)
    latents = _latents(3)
    with torch.inference_mode():  # helper threads write into the caller's inference tensors
        inferred = tiny_pipeline.decode(latents, 3, speedups)
    assert torch.equal(inferred, tiny_pipeline.decode(latents, 3, speedups))
