"""`python -m bench.scaling`: seconds per run with the windows shared by 1, 2, ... processes (gloo, CPU).

Each configuration starts its ranks as separate processes with torchrun's environment variables; every
rank builds the same seeded random-weight networks (bench.models), warms up once, and rank 0 reports
the time of one measured run. Threads per rank default to the cores divided by the ranks, so every
configuration uses the same cores. Prints a table: ranks, threads, seconds, speed-up and efficiency.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from magicanimate_core.distributed import WindowShare
from magicanimate_core.pipeline import Speedups

from .models import build_pipeline
from .runner import random_inputs

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per rank (default cores / ranks)")
    parser.add_argument("--size", type=int, default=64, help="square frame size (multiple of 8)")
    parser.add_argument("--frames", type=int, default=64, help="frames (64 -> 6 windows of 16, overlap 4)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps")
    parser.add_argument("--full-size", action="store_true", help="full-size networks instead of the tiny widths")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One rank: build, warm up, time one run; rank 0 prints a JSON line."""
    torch.set_num_threads(args.threads)
    share, device = WindowShare.from_environment(torch.device("cpu"))
    try:
        pipe = build_pipeline(device, torch.float32, tiny=not args.full_size)
        reference, motion = random_inputs(args.size, args.size, args.frames, seed=0)
        speedups = Speedups(decode_batch_size=1)
        pipe(reference, motion[:16], num_inference_steps=1, speedups=speedups, share=share)  # warm-up
        share.agree()  # start together
        start = time.perf_counter()
        video = pipe(reference, motion, num_inference_steps=args.steps, speedups=speedups, share=share)
        seconds = time.perf_counter() - start
        if share.leader:
            print(json.dumps({"ranks": share.world_size, "seconds": seconds, "frames": len(video)}))
    finally:
        share.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(args: argparse.Namespace, ranks: int, threads: int) -> float:
    """Run `ranks` worker processes; return rank 0's measured seconds."""
    port = free_port()
    command = [sys.executable, "-m", "bench.scaling", "--worker", "--threads", str(threads)]
    command += ["--size", str(args.size), "--frames", str(args.frames), "--steps", str(args.steps)]
    command += ["--full-size"] if args.full_size else []
    environment = {"PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    environment |= {"WORLD_SIZE": str(ranks), "OMP_NUM_THREADS": str(threads)}
    processes = [
        subprocess.Popen(
            command,
            env={**os.environ, **environment, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for r in range(ranks)
    ]
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise RuntimeError(f"a rank failed: exit codes {[p.returncode for p in processes]}")
    return json.loads(outputs[0].strip().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    cores = os.cpu_count() or 1
    padded = -(-args.frames // 16) * 16
    windows = 1 if padded <= 16 else -(-padded // 12)
    rows = []
    for ranks in args.ranks:
        threads = args.threads or max(1, cores // ranks)
        seconds = launch(args, ranks, threads)
        rows.append((ranks, threads, seconds))
        print(f"{ranks} rank(s) x {threads} thread(s): {seconds:.1f} s", file=sys.stderr)
    base_ranks, _, base = rows[0]
    networks = "full-size" if args.full_size else "tiny"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(
        f"\nwindow parallelism, {networks} networks, {args.size}x{args.size}, {args.frames} frames "
        f"({windows} windows per step), {args.steps} steps, fp32, CPU with {cores} cores, load {load[0]:.1f}"
    )
    print(
        f"{'ranks':>5} {'threads/rank':>12} {'seconds':>8} {'s/frame':>8} {'speed-up':>8} {'efficiency':>10} "
        f"{'windows/rank':>12}"
    )
    for ranks, threads, seconds in rows:
        speedup = base / seconds
        print(
            f"{ranks:>5} {threads:>12} {seconds:>8.1f} {seconds / args.frames:>8.3f} {speedup:>7.2f}x "
            f"{speedup * base_ranks / ranks:>9.0%} {-(-windows // ranks):>12}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
