"""`python -m bench.components_small`: per-model seconds on the side-by-side `small` checkpoints, per memory format.

One UNet3D call (16 frames, guidance: 32 rows with the shared down path), one ControlNet call (16 frames), the
appearance encoder, and the VAE decoder (up to 4 frames, one per call), each timed contiguous and channels-last in
alternation (`--rounds` times), wall and process seconds; `--profile` adds torch.profiler's top ops of the UNet
call. The checkpoints are the ones `../shared/perf/original_env.sh` builds (`--ckpt`, default
`$PERF_CACHE/small_checkpoints/pretrained_models`). On a machine other jobs load, compare the formats'
ratios, not the absolute seconds (OpenMP threads spin while descheduled, so process time inflates too).
Each job's FLOPs are counted once, outside the timed loop, with `torch.utils.flop_counter.FlopCounterMode`
(matmul, convolution and SDPA FLOPs only, not elementwise work such as norms and activations), and printed as
GFLOP and achieved GFLOP/s (over min wall seconds) per memory format.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from magicanimate_core.options import CHANNELS_LAST_MODELS
from magicanimate_core.pipeline import MagicAnimatePipeline

PERF_CACHE = Path(os.environ.get("PERF_CACHE", Path.home() / ".cache" / "magicanimate-perf"))
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def jobs(pipe: MagicAnimatePipeline, frames: int) -> dict[str, Callable[[], object]]:
    models, text = pipe.models, pipe.text_embedding()
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, frames, 32, 32, generator=generator)
    per_frame = latents[0].transpose(0, 1)
    reference = torch.randn(1, 4, 32, 32, generator=generator)
    control = torch.rand(frames, 3, 256, 256, generator=generator)
    t = torch.tensor(500)

    def controlnet() -> tuple:
        return models.controlnet(
            per_frame, t, encoder_hidden_states=text.expand(frames, -1, -1), controlnet_cond=control, return_dict=False
        )

    bank = models.appearance_encoder(reference, t, text)
    down, mid = controlnet()
    residuals = [r.transpose(0, 1)[None] for r in (*down, mid)]

    def unet() -> torch.Tensor:
        bank.projections.clear()
        pipe.reference_state.bank = bank
        pipe.reference_state.cond_rows = torch.tensor([False, True]).repeat_interleave(frames)
        return models.unet(latents, t, text, residuals[:-1], residuals[-1], cfg_copies=2)

    def decode() -> list:
        return [models.vae.decode(per_frame[i : i + 1]) for i in range(min(4, frames))]

    return {
        "unet": unet,
        "controlnet": controlnet,
        "appearance_encoder": lambda: models.appearance_encoder(reference, t, text),
        "vae": decode,
    }


def count_flops(job: Callable[[], object]) -> int:
    """FLOPs of one call of `job` as FlopCounterMode counts them (matmul/conv/SDPA, not elementwise work)."""
    with FlopCounterMode(display=False) as counter:
        job()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", type=Path, default=PERF_CACHE / "small_checkpoints" / "pretrained_models")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="torch.profiler top ops of one UNet call")
    args = parser.parse_args(argv)
    if not args.ckpt.is_dir():
        print(f"no small checkpoints at {args.ckpt}: run ../shared/perf/original_env.sh once, or pass --ckpt")
        return 2
    torch.set_num_threads(args.threads)
    pipe = MagicAnimatePipeline.from_pretrained(args.ckpt, device="cpu", dtype=torch.float32)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with torch.no_grad():
        work = jobs(pipe, args.frames)
        counted = {name: count_flops(job) for name, job in work.items()}
        for _ in range(args.rounds):
            for fmt_name, fmt in FORMATS.items():
                for name in CHANNELS_LAST_MODELS:
                    getattr(pipe.models, name).to(memory_format=fmt)
                for name, job in work.items():
                    job()  # warm-up in this format
                    wall, cpu = time.perf_counter(), time.process_time()
                    job()
                    times.setdefault((name, fmt_name), []).append(
                        (time.perf_counter() - wall, time.process_time() - cpu)
                    )
        print(f"load average {os.getloadavg()}; seconds: min wall (min process) over {args.rounds} rounds")
        print(f"{'model':<20} {'contiguous':>18} {'channels_last':>18} {'cl/contig':>10}")
        for name in work:
            best = {f: (min(w for w, _ in times[name, f]), min(c for _, c in times[name, f])) for f in FORMATS}
            ratio = best["channels_last"][0] / best["contiguous"][0]
            cells = " ".join(f"{best[f][0]:>8.2f} ({best[f][1]:>6.2f})" for f in FORMATS)
            print(f"{name:<20} {cells} {ratio:>10.2f}")
        print("\nFLOPs counted once with FlopCounterMode (matmul/conv/SDPA only, not elementwise work); GFLOP/s over")
        print("min wall seconds")
        print(f"{'model':<20} {'GFLOP':>10} {'contiguous':>12} {'channels_last':>14}")
        for name in work:
            rates = [counted[name] / 1e9 / min(w for w, _ in times[name, f]) for f in FORMATS]
            print(f"{name:<20} {counted[name] / 1e9:>10.2f} {rates[0]:>12.2f} {rates[1]:>14.2f}")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for name in CHANNELS_LAST_MODELS:
                getattr(pipe.models, name).to(memory_format=torch.contiguous_format)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                work["unet"]()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
