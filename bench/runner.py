"""One benchmark run: warm-up, timing, peak memory, model calls per step, FLOPs; returns a result row."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from magicanimate_core.pipeline import MagicAnimatePipeline, SamplingOptions, Speedups, StepInfo

from . import flops
from .counters import CallCounter
from .exact_off import uncached_reference
from .memory import PeakMemory

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
Inputs = tuple[torch.Tensor, torch.Tensor]  # reference [H, W, 3], motion [F, H, W, 3]


@dataclass(frozen=True)
class Case:
    """What to run: sizes, schedule and the pipeline's knobs."""

    label: str
    height: int
    width: int
    frames: int
    steps: int
    speedups: Speedups = field(default_factory=Speedups)
    options: SamplingOptions = field(default_factory=SamplingOptions)
    context_overlap: int = 4
    guidance_scale: float = 7.5
    uncached_kv: bool = False  # project the reference tokens on every UNet call (with EXACT_OFF: the original)

    @property
    def changed(self) -> list[str]:
        """The output-changing settings that differ from the original's."""
        overlap = [f"context_overlap={self.context_overlap}"] if self.context_overlap != 4 else []
        return [*self.options.changed, *overlap]

    @property
    def shape(self) -> flops.RunShape:
        return flops.RunShape(
            self.height,
            self.width,
            self.frames,
            self.steps,
            context_overlap=self.context_overlap,
            guidance_scale=self.guidance_scale,
        )


@dataclass(frozen=True)
class Timing:
    seconds: float
    denoise_seconds: float
    decode_seconds: float
    peak_device: int
    peak_host: int
    peak_resident: int
    cpu_busy: float | None  # CPU runs: process CPU time / (wall time x threads); well below 1: others took cores
    video: torch.Tensor


@dataclass
class Result:
    row: dict[str, Any]
    video: torch.Tensor


def effective_speedups(case: Case, device: torch.device) -> list[str]:
    """`Speedups.enabled`, the reference K/V cache unless turned off, and channels_last where its automatic
    default turns it on (CUDA)."""
    speedups = case.speedups
    names = list(speedups.enabled)
    if not case.uncached_kv:
        names.insert(1, "cache_reference_kv")
    if speedups.channels_last is None and device.type == "cuda":
        names.append("channels_last(auto)")
    return names


def random_inputs(height: int, width: int, frames: int, seed: int) -> Inputs:
    """A random reference image `[H, W, 3]` and random motion frames `[F, H, W, 3]`, both seeded."""
    reference = torch.rand((height, width, 3), generator=torch.Generator().manual_seed(seed))
    motion = torch.rand((frames, height, width, 3), generator=torch.Generator().manual_seed(seed + 1))
    return reference, motion


def _mean(values: list[int]) -> float | int:
    mean = sum(values) / max(len(values), 1)
    return int(mean) if mean == int(mean) else round(mean, 2)


class Runner:
    """Runs cases on one pipeline; warms each distinct configuration up once before measuring it."""

    def __init__(self, pipe: MagicAnimatePipeline, seed: int = 0, full_size: bool = True) -> None:
        self.pipe = pipe
        self.seed = seed
        self.full_size = full_size  # the FLOP model describes the full-size networks only
        self.counter = CallCounter(pipe.models)  # installed once: new hooks would recompile a compiled UNet
        self.memory = PeakMemory(pipe.device)
        self._warm: set[Any] = set()

    def _sync(self) -> None:
        if self.pipe.device.type == "cuda":
            torch.cuda.synchronize(self.pipe.device)

    def _call(self, case: Case, inputs: Inputs, steps: int, callback: Any = None) -> torch.Tensor:
        reference, motion = inputs
        with uncached_reference(self.pipe) if case.uncached_kv else contextlib.nullcontext():
            return self.pipe(
                reference,
                motion,
                seed=self.seed,
                num_inference_steps=steps,
                guidance_scale=case.guidance_scale,
                context_overlap=case.context_overlap,
                callback=callback,
                options=case.options,
                speedups=case.speedups,
            )

    def warm_up(self, case: Case) -> None:
        """Once per configuration. Compiling: the whole case (every graph shape, guided and unguided steps).
        Otherwise one step on up to 16 frames: the same per-window shapes, kernels chosen and caches filled."""
        if case.speedups.compile:
            key: Any = dataclasses.replace(case, label="")
            frames, steps = case.frames, case.steps
        else:
            key = (case.height, case.width, case.speedups)
            frames, steps = min(case.frames, 16), 1
        if key not in self._warm:
            self._call(case, random_inputs(case.height, case.width, frames, self.seed), steps)
            self._warm.add(key)

    def _timed(self, case: Case) -> Timing:
        """One measured run; the counter holds its model calls afterwards."""
        self.counter.reset()
        step_ends: list[float] = []

        def on_progress(info: StepInfo) -> None:
            if info.latents is not None:
                self._sync()
                step_ends.append(time.perf_counter())
                self.counter.end_step()

        inputs = random_inputs(case.height, case.width, case.frames, self.seed)  # the caller's, not the run's
        self.memory.start()
        cpu_start, start = time.process_time(), time.perf_counter()
        video = self._call(case, inputs, case.steps, on_progress)
        self._sync()
        cpu_end, end = time.process_time(), time.perf_counter()
        peak_device, peak_host, peak_resident = self.memory.stop()
        threads = torch.get_num_threads()
        busy = None if self.pipe.device.type == "cuda" else (cpu_end - cpu_start) / ((end - start) * threads)
        return Timing(
            end - start, step_ends[-1] - start, end - step_ends[-1], peak_device, peak_host, peak_resident, busy, video
        )

    def run(self, case: Case, repeat: int = 1) -> Result:
        """Warm up, then run `repeat` times: times of the median run, peak memory of the highest."""
        self.warm_up(case)
        timings = [self._timed(case) for _ in range(repeat)]
        median = sorted(timings, key=lambda timing: timing.seconds)[(repeat - 1) // 2]
        seconds = median.seconds
        ours = flops.ours(case.shape, case.speedups, case.options, not case.uncached_kv) if self.full_size else None
        per_step = self.counter.steps

        def each(key: str) -> list[int]:
            return [step.get(key, 0) for step in per_step]

        row: dict[str, Any] = {
            "device": str(self.pipe.device),
            "dtype": DTYPE_NAMES.get(self.pipe.dtype, str(self.pipe.dtype)),
            "height": case.height,
            "width": case.width,
            "frames": case.frames,
            "steps": case.steps,
            "seconds_per_frame": seconds / case.frames,
            "peak_device_bytes": max(timing.peak_device for timing in timings),
            "peak_host_bytes": max(timing.peak_host for timing in timings),
            "peak_resident_bytes": max(timing.peak_resident for timing in timings),
            "calls_per_step": {
                "unet": _mean(each("unet_calls")),
                "controlnet": _mean(each("controlnet_calls")),
                "appearance": _mean(each("appearance_calls")),
                "vae": self.counter.calls["vae"],  # decode calls of the run: all after the last step
            },
            "speedups": effective_speedups(case, self.pipe.device),
            "label": case.label,
            "options": case.changed,
            "peak_device_kind": "cuda max_memory_allocated" if self.pipe.device.type == "cuda" else "peak RSS growth",
            "seconds": seconds,
            "seconds_runs": [timing.seconds for timing in timings],
            "denoise_seconds": median.denoise_seconds,
            "decode_seconds": median.decode_seconds,
            "cpu_busy": median.cpu_busy,
            "rows_per_step": {
                "unet": _mean(each("unet_rows")),
                "controlnet": _mean(each("controlnet_rows")),
                "appearance": _mean(each("appearance_rows")),
            },
            "vae_decoded_frames": self.counter.rows["vae"],
            "output_bytes": median.video.numel() * median.video.element_size(),
            "tflop": None if ours is None else ours / 1e12,
            "tflop_reference": flops.reference(case.shape) / 1e12 if self.full_size else None,
            "tflops_per_second": None if ours is None else ours / 1e12 / seconds,
        }
        return Result(row, median.video)


def psnr(video: torch.Tensor, baseline: torch.Tensor) -> float:
    """PSNR in dB between two `[F, H, W, 3]` videos in [0, 1] (inf when identical)."""
    mse = torch.mean((video.double() - baseline.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
