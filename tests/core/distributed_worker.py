"""One rank of a test run: `python distributed_worker.py MODEL_DIR INPUTS OUTPUT [--fail-rank R]`.

The rank, world size and rendezvous come from the environment (as torchrun sets them). INPUTS is a
`torch.save`d dict with reference, motion, noise, steps, context_overlap; rank 0 saves the video to
OUTPUT and every rank prints `rank R windows [..]`. With --fail-rank R, rank R's callback raises.
"""

from __future__ import annotations

import argparse

import torch

from magicanimate_core.distributed import WindowShare
from magicanimate_core.pipeline import MagicAnimatePipeline, StepInfo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("inputs")
    parser.add_argument("output")
    parser.add_argument("--fail-rank", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    share, device = WindowShare.from_environment(torch.device("cpu"))
    try:
        inputs = torch.load(args.inputs, weights_only=True)
        pipe = MagicAnimatePipeline.from_pretrained(args.model_dir, device=device)

        def fail_here(info: StepInfo) -> None:
            if share.rank == args.fail_rank:
                raise ValueError(f"injected failure on rank {share.rank} at step {info.step}")

        video = pipe(
            inputs["reference"],
            inputs["motion"],
            noise=inputs["noise"],
            num_inference_steps=inputs["steps"],
            context_overlap=inputs["context_overlap"],
            callback=fail_here if args.fail_rank is not None else None,
            share=share,
        )
        print(f"rank {share.rank} windows {share.windows(inputs['windows'])} frames {len(video)}", flush=True)
        if share.leader:
            torch.save(video, args.output)
    finally:
        share.close()


if __name__ == "__main__":
    main()
