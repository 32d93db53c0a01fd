"""`python -m bench`: speed, memory, model calls and FLOPs of the full-size pipeline with random weights.

Presets (each value can be overridden with --size/--frames/--steps/--dtype):
  CPU default  256x256, 16 and 48 frames, 2 steps, bf16     (minutes on 2 cores)
  CPU --quick  128x128, 16 and 48 frames, 2 steps, bf16     (under five minutes on 2 cores)
  --gpu        512x512, 16/64/256 frames, 25 steps, fp16 and bf16 (automatic when CUDA is available)
  GPU --quick  512x512, 16 and 64 frames, 10 steps, fp16
  --tiny       the golden tiny widths, 64x64, 16 and 48 frames, 2 steps, fp32 (checks the harness only)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from magicanimate_core.devices import DTYPES
from magicanimate_core.pipeline import SamplingOptions, Speedups

from .exact_off import EXACT_OFF
from .memory import release_freed_memory_promptly
from .models import build_pipeline, parameter_count
from .report import NOTES, format_table, write_json
from .runner import Case, Result, Runner, psnr

MEMORY_TARGET = 1.10  # peak device memory at 256 frames within 10 % of 16 frames


@dataclass(frozen=True)
class Preset:
    size: tuple[int, int]  # height, width
    frames: tuple[int, ...]
    steps: int
    dtypes: tuple[str, ...]


PRESETS = {
    "cpu": Preset((256, 256), (16, 48), 2, ("bf16",)),
    "cpu-quick": Preset((128, 128), (16, 48), 2, ("bf16",)),
    "cpu-memory": Preset((128, 128), (16, 256), 1, ("bf16",)),
    "cuda": Preset((512, 512), (16, 64, 256), 25, ("fp16", "bf16")),
    "cuda-quick": Preset((512, 512), (16, 64), 10, ("fp16",)),
    "cuda-memory": Preset((512, 512), (16, 256), 2, ("fp16",)),
    "tiny": Preset((64, 64), (16, 48), 2, ("fp32",)),
}


def parse_size(text: str) -> tuple[int, int]:
    """`512` or `WIDTHxHEIGHT` -> (height, width)."""
    width, _, height = text.lower().partition("x")
    return int(height or width), int(width)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), help="one or more dtypes")
    parser.add_argument("--size", type=parse_size, help="512 or WIDTHxHEIGHT (multiples of 8)")
    parser.add_argument("--frames", type=int, nargs="+", help="frame counts to run")
    parser.add_argument("--steps", type=int, help="denoising steps")
    parser.add_argument("--quick", action="store_true", help="a short configuration (CPU: under five minutes)")
    parser.add_argument("--gpu", action="store_true", help="the GPU preset on cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny widths instead of the full-size networks")
    parser.add_argument("--exact-off", action="store_true", help="run with every exact speed-up off")
    parser.add_argument("--compare", action="store_true", help="run exact speed-ups off and on; print the ratio")
    parser.add_argument("--approx", action="store_true", help="also run the output-changing options; PSNR vs default")
    parser.add_argument("--check-memory", action="store_true", help="peak device memory, 256 vs 16 frames")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (warm-up covers compilation)")
    parser.add_argument(
        "--windows-per-call", type=int, default=Speedups().windows_per_call, help="context windows per UNet call"
    )
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per case; the median is reported")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and the random inputs")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def choose_preset(args: argparse.Namespace, device: torch.device) -> Preset:
    if args.tiny:
        name = "tiny"
    else:
        name = "cuda" if device.type == "cuda" else "cpu"
        name += "-memory" if args.check_memory else "-quick" if args.quick else ""
    preset = PRESETS[name]
    return Preset(
        size=args.size or preset.size,
        frames=tuple(args.frames or preset.frames),
        steps=args.steps or preset.steps,
        dtypes=tuple(args.dtype or preset.dtypes),
    )


def approx_cases(base: Case) -> list[Case]:
    """The output-changing options: DPM-Solver++ with 60 % of the steps, CFG on the first half, overlap 2,
    deep feature reuse every 2 and 3 steps."""
    fewer = max(1, round(base.steps * 0.6))
    dpmpp, early_cfg = SamplingOptions(scheduler="dpmpp"), SamplingOptions(guidance_until=0.5)
    return [
        dataclasses.replace(base, label=f"dpmpp-{fewer}", steps=fewer, options=dpmpp),
        dataclasses.replace(base, label="cfg-until-0.5", options=early_cfg),
        dataclasses.replace(base, label="overlap-2", context_overlap=2),
        dataclasses.replace(base, label="deep-reuse-2", options=SamplingOptions(deep_feature_reuse=2)),
        dataclasses.replace(base, label="deep-reuse-3", options=SamplingOptions(deep_feature_reuse=3)),
        dataclasses.replace(
            base,
            label="all-three",
            steps=fewer,
            options=SamplingOptions(scheduler="dpmpp", guidance_until=0.5),
            context_overlap=2,
        ),
    ]


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    load = "; load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{device} ({name}); torch {torch.__version__}{load}"


def flop_ratio(slow: Result, fast: Result) -> str:
    if slow.row["tflop"] is None:
        return ""
    return f" ({slow.row['tflop'] / fast.row['tflop']:.2f}x fewer FLOPs)"


def compare_line(dtype: str, frames: int, off: Result, on: Result) -> str:
    return (
        f"{dtype} {frames} frames: exact speed-ups off -> on {off.row['seconds_per_frame']:.2f} -> "
        f"{on.row['seconds_per_frame']:.2f} s/frame = {off.row['seconds'] / on.row['seconds']:.2f}x faster"
        f"{flop_ratio(off, on)}; PSNR on vs off {on.row['psnr_db']:.1f} dB"
    )


def approx_line(dtype: str, frames: int, case: Case, result: Result, default: Result) -> str:
    return (
        f"{dtype} {frames} frames: {case.label} ({', '.join(case.changed)}) "
        f"{default.row['seconds'] / result.row['seconds']:.2f}x faster than default{flop_ratio(default, result)}; "
        f"PSNR vs default {result.row['psnr_db']:.1f} dB"
    )


def memory_line(dtype: str, device: torch.device, short: dict, long: dict) -> str:
    """The 256- vs 16-frame peak: CUDA's allocator peak; on the CPU the peak resident set, both with weights."""
    key = "peak_device_bytes" if device.type == "cuda" else "peak_resident_bytes"
    ratio = long[key] / short[key]
    line = (
        f"{dtype} memory 16 -> 256 frames ({'peak allocated' if device.type == 'cuda' else 'peak RSS'}, weights "
        f"included): {short[key] / 2**30:.2f} -> {long[key] / 2**30:.2f} GiB = {ratio:.3f}x "
        f"(target <= {MEMORY_TARGET}): {'PASS' if ratio <= MEMORY_TARGET else 'FAIL'}"
    )
    if device.type == "cpu":
        line += (
            f"; growth during the run {short['peak_host_bytes'] / 2**30:.2f} -> "
            f"{long['peak_host_bytes'] / 2**30:.2f} GiB, of which the returned frames "
            f"{short['output_bytes'] / 2**30:.2f} -> {long['output_bytes'] / 2**30:.2f} GiB"
        )
    return line


def run_dtype(
    args: argparse.Namespace, device: torch.device, preset: Preset, dtype: str
) -> tuple[list[dict], list[str]]:
    """Every requested run in one dtype: the rows, and the summary lines (ratios) that go under the table."""
    rows: list[dict] = []
    summary: list[str] = []
    pipe = build_pipeline(device, DTYPES[dtype], tiny=args.tiny)
    print(f"built {parameter_count(pipe.models) / 1e9:.2f} B parameters, {dtype}, {device}", file=sys.stderr)
    runner = Runner(pipe, args.seed, full_size=not args.tiny)

    def run(case: Case) -> Result:
        print(f"running {case.label}: {case.frames} frames, {case.steps} steps, {dtype}", file=sys.stderr)
        result = runner.run(case, args.repeat)
        rows.append(result.row)
        return result

    # the pipeline's own defaults for this device (CUDA decodes 8 frames a call), with the command line's switches
    speedups = dataclasses.replace(
        Speedups.for_device(device), compile=args.compile, windows_per_call=args.windows_per_call
    )
    peaks: dict[int, dict] = {}
    for frames in preset.frames:
        default = Case("default", *preset.size, frames, preset.steps, speedups=speedups)
        if args.exact_off or args.compare:
            off = run(dataclasses.replace(default, label="exact-off", speedups=EXACT_OFF, uncached_kv=True))
            if not args.compare:
                continue
        on = run(default)
        peaks[frames] = on.row
        if args.compare:
            on.row["psnr_db"] = psnr(on.video, off.video)
            summary.append(compare_line(dtype, frames, off, on))
        if args.approx:
            for case in approx_cases(default):
                result = run(case)
                result.row["psnr_db"] = psnr(result.video, on.video)
                summary.append(approx_line(dtype, frames, case, result, on))
    if args.check_memory and {16, 256} <= peaks.keys():
        summary.append(memory_line(dtype, device, peaks[16], peaks[256]))
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("--gpu needs CUDA, and torch sees no CUDA device", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if args.gpu or torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    release_freed_memory_promptly()
    preset = choose_preset(args, device)
    before = environment(device)
    rows: list[dict] = []
    summary: list[str] = []
    for dtype in preset.dtypes:
        dtype_rows, dtype_summary = run_dtype(args, device, preset, dtype)
        rows += dtype_rows
        summary += dtype_summary
        gc.collect()  # the previous dtype's networks go before the next ones are built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"\nMagicAnimate benchmark, {'tiny' if args.tiny else 'full-size'} networks, random weights")
    print(f"start: {before}\nend:   {environment(device)}\n")
    print(format_table(rows))
    print()
    for line in (*NOTES, *summary):
        print(line)
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
