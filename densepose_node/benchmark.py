"""CPU speed of the built-in DensePose R-CNN at full R_50_FPN_s1x widths: `python -m densepose_node.benchmark`.

Random weights (no download needed), with the RPN deltas, box deltas and class logits zeroed so every
proposal scores 0.5 and detections happen; the number of people is set through `max_detections`.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
import torch

from .checkpoint_layout import concrete_layout, resnet50_fpn_widths
from .rcnn.model import DensePoseRCNN
from .rcnn.preprocess import resized_size
from .render import render_frame

ZEROED = (  # every proposal scores 0.5 and stays at its anchor
    "proposal_generator.rpn_head.anchor_deltas.weight",
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.bbox_pred.weight",
)


def _draw(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """He-initialised weights (0.01-scaled for the DensePose predictor), identity FrozenBN, zero biases."""
    if name.endswith(("norm.weight", "running_var")):
        return torch.ones(shape)
    if len(shape) == 1:
        return torch.zeros(shape)
    if "densepose_predictor" in name:
        return torch.randn(shape) * 0.01
    return torch.randn(shape) * (2.0 / math.prod(shape[1:])) ** 0.5


def synthetic_state_dict(
    stem: int = 64, res2: int = 256, width: int = 64, fpn: int = 256, fc: int = 1024, head: int = 512, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random DensePose R-CNN checkpoint with R_50_FPN_s1x names (defaults: the real widths)."""
    torch.manual_seed(seed)
    layout = concrete_layout(resnet50_fpn_widths(stem, res2, width, fpn, fc, head))
    state = {name: _draw(name, shape) for name, shape in layout.items()}
    for name in ZEROED:
        state[name].zero_()
    return state


def time_frame(model: DensePoseRCNN, frame: np.ndarray, people: int, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU (all threads) seconds per frame, estimation + rendering after one warm-up, and the
    people found. CPU seconds / threads approximates the wall time on an otherwise idle machine."""
    model.max_detections = people
    model.score_threshold = 0.05 if people else 1.0
    found = len(model([frame])[0])
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        [instances] = model([frame])
        render_frame(instances)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--people", type=int, nargs="+", default=[0, 1, 3, 10])
    parser.add_argument("--sizes", nargs="+", default=["512x512", "1280x720"], help="WxH frame sizes")
    args = parser.parse_args()
    model = DensePoseRCNN.from_state_dict(synthetic_state_dict(), source="random R_50_FPN_s1x")
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes slow the wall time)")
    print(f"{'frame WxH':>10} {'net WxH':>10} {'people':>6} {'wall s':>7} {'CPU s':>7}")
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        net_h, net_w = resized_size(height, width)
        for people in args.people:
            wall, cpu, found = time_frame(model, frame, people, args.repeats)
            print(f"{size:>10} {f'{net_w}x{net_h}':>10} {found:>6} {wall:7.2f} {cpu:7.2f}", flush=True)


if __name__ == "__main__":
    main()
