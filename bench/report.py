"""The printed table and the JSON file, both from the same result rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

GIB = 2**30

COLUMNS: list[tuple[str, Any]] = [
    ("run", lambda r: r["label"]),
    ("device", lambda r: r["device"]),
    ("dtype", lambda r: r["dtype"]),
    ("size", lambda r: f"{r['width']}x{r['height']}"),
    ("frames", lambda r: r["frames"]),
    ("steps", lambda r: r["steps"]),
    ("s/frame", lambda r: f"{r['seconds_per_frame']:.2f}"),
    ("total s", lambda r: f"{r['seconds']:.1f}"),
    ("decode s", lambda r: f"{r['decode_seconds']:.1f}"),
    ("CPU busy", lambda r: "-" if r["cpu_busy"] is None else f"{r['cpu_busy']:.0%}"),
    ("peak dev GiB", lambda r: f"{r['peak_device_bytes'] / GIB:.2f}" + ("*" if r["device"] == "cpu" else "")),
    ("peak host GiB", lambda r: f"{r['peak_host_bytes'] / GIB:.2f}"),
    ("calls/step U C A", lambda r: " ".join(str(r["calls_per_step"][k]) for k in ("unet", "controlnet", "appearance"))),
    ("rows/step U C A", lambda r: " ".join(str(r["rows_per_step"][k]) for k in ("unet", "controlnet", "appearance"))),
    ("VAE calls(frames)", lambda r: f"{r['calls_per_step']['vae']}({r['vae_decoded_frames']})"),
    ("TFLOP", lambda r: _number(r["tflop"], 1)),
    ("ref TFLOP", lambda r: _number(r["tflop_reference"], 1)),
    ("TFLOP/s", lambda r: _number(r["tflops_per_second"], 2)),
    ("PSNR dB", lambda r: _number(r.get("psnr_db"), 1)),
    ("output-changing", lambda r: ",".join(r["options"]) or "-"),
    ("speed-ups on", lambda r: ",".join(r["speedups"])),
]

NOTES = (
    "U C A = UNet, ControlNet, appearance encoder; rows = UNet frame-rows (both guidance halves), ControlNet "
    "frames, encoder images. VAE: decode calls of the whole run (after the last step) and frames decoded.",
    "TFLOP: analytic count of what this pipeline runs (bench/flops.py, reference spec §12); ref TFLOP: the "
    "original MagicAnimate at the same size, frames, steps and overlap. TFLOP/s = TFLOP / total s. "
    "Not given for --tiny (the model describes the full-size networks).",
    "Times: after a warm-up run, the median of --repeat runs (each run's time is in the JSON, seconds_runs). "
    "CPU busy: process CPU time / (wall time x torch threads); well below 100 % on a CPU run means other "
    "processes took cores and the time is inflated.",
    "PSNR: of the output against the run it is compared with (exact-off, or default for output-changing options), "
    "same seed and inputs. With random weights it shows how far an option moves this network's output, not "
    "image quality.",
    "* on the CPU, device and host memory are one: both columns are the process's peak resident-set growth "
    "during the run (VmHWM minus VmRSS before it), not an allocator figure.",
)


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [[name for name, _ in COLUMNS]] + [[str(get(row)) for _, get in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def write_json(rows: list[dict[str, Any]], path: Path) -> None:
    """The rows as a JSON list (a non-finite number, such as the PSNR of identical outputs, written as null)."""

    def finite(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    clean = [{key: finite(value) for key, value in row.items()} for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean, indent=1) + "\n")
