"""Memory is bounded by the context window: a longer clip costs only its frames and latents."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
