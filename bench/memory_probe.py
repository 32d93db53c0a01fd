"""Run the pipeline on N random frames in a fresh process and print its peak host-memory growth.

Usage: python -m bench.memory_probe MODEL_DIR FRAMES SIZE. Prints `growth_bytes output_bytes`: the peak
resident set (VmHWM) minus the resident set just before the call, and the bytes of the returned frames.
Linux only (reads /proc); tests/core/test_memory.py runs it at two clip lengths.
"""

from __future__ import annotations

import sys

import torch

from magicanimate_core.pipeline import MagicAnimatePipeline

from .memory import PeakMemory, release_freed_memory_promptly


def main() -> None:
    model_dir, frames, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    release_freed_memory_promptly()
    pipe = MagicAnimatePipeline.from_pretrained(model_dir)
    reference, motion = torch.rand(size, size, 3), torch.rand(frames, size, size, 3)
    pipe(reference, motion[:16], num_inference_steps=1)  # warm up allocator and kernels
    peak = PeakMemory(pipe.device)
    peak.start()
    out = pipe(reference, motion, num_inference_steps=1)
    _, growth, _ = peak.stop()
    print(growth, out.numel() * out.element_size())


if __name__ == "__main__":
    main()
