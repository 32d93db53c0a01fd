"""Run the tiny pipeline on N random frames in a fresh process and print its peak host-memory growth.

Usage: python memory_probe.py MODEL_DIR FRAMES SIZE. Prints `growth_bytes output_bytes`: the peak
resident set (VmHWM) minus the resident set just before the call, and the bytes of the returned frames.
"""

from __future__ import annotations

import sys

import torch

from magicanimate_core.pipeline import MagicAnimatePipeline


def resident(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    model_dir, frames, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    pipe = MagicAnimatePipeline.from_pretrained(model_dir)
    reference, motion = torch.rand(size, size, 3), torch.rand(frames, size, size, 3)
    pipe(reference, motion[:16], num_inference_steps=1)  # warm up allocator and kernels
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current resident set
    before = resident("VmRSS")
    out = pipe(reference, motion, num_inference_steps=1)
    print(resident("VmHWM") - before, out.numel() * out.element_size())


if __name__ == "__main__":
    main()
