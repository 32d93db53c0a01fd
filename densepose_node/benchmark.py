"""CPU speed of the built-in DensePose R-CNN at full R_50_FPN_s1x widths: `python -m densepose_node.benchmark`.

Random weights (no download needed), with the RPN deltas, box deltas and class logits zeroed so every
proposal scores 0.5 and detections happen; the number of people is set through `max_detections`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from .rcnn.model import DensePoseRCNN
from .rcnn.preprocess import resized_size
from .render import render_frame

RESNET50_BLOCKS = (3, 4, 6, 3)


def _conv_norm(state: dict[str, torch.Tensor], key: str, out_ch: int, in_ch: int, kernel: int) -> None:
    state[f"{key}.weight"] = torch.randn(out_ch, in_ch, kernel, kernel) * (2.0 / (in_ch * kernel * kernel)) ** 0.5
    state[f"{key}.norm.weight"] = torch.ones(out_ch)
    state[f"{key}.norm.bias"] = torch.zeros(out_ch)
    state[f"{key}.norm.running_mean"] = torch.zeros(out_ch)
    state[f"{key}.norm.running_var"] = torch.ones(out_ch)


def _conv(state: dict[str, torch.Tensor], key: str, out_ch: int, in_ch: int, kernel: int) -> None:
    state[f"{key}.weight"] = torch.randn(out_ch, in_ch, kernel, kernel) * (2.0 / (in_ch * kernel * kernel)) ** 0.5
    state[f"{key}.bias"] = torch.zeros(out_ch)


def synthetic_state_dict(
    stem: int = 64, res2: int = 256, width: int = 64, fpn: int = 256, fc: int = 1024, head: int = 512, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random DensePose R-CNN checkpoint with R_50_FPN_s1x names (defaults: the real widths)."""
    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    _conv_norm(state, "backbone.bottom_up.stem.conv1", stem, 3, 7)
    in_ch = stem
    for stage, blocks in enumerate(RESNET50_BLOCKS):
        bottleneck, out_ch = width * 2**stage, res2 * 2**stage
        for i in range(blocks):
            key = f"backbone.bottom_up.res{stage + 2}.{i}"
            _conv_norm(state, f"{key}.conv1", bottleneck, in_ch, 1)
            _conv_norm(state, f"{key}.conv2", bottleneck, bottleneck, 3)
            _conv_norm(state, f"{key}.conv3", out_ch, bottleneck, 1)
            if i == 0:
                _conv_norm(state, f"{key}.shortcut", out_ch, in_ch, 1)
            in_ch = out_ch
        _conv(state, f"backbone.fpn_lateral{stage + 2}", fpn, out_ch, 1)
        _conv(state, f"backbone.fpn_output{stage + 2}", fpn, fpn, 3)
    _conv(state, "proposal_generator.rpn_head.conv", fpn, fpn, 3)
    _conv(state, "proposal_generator.rpn_head.objectness_logits", 3, fpn, 1)
    _conv(state, "proposal_generator.rpn_head.anchor_deltas", 12, fpn, 1)
    state["proposal_generator.rpn_head.anchor_deltas.weight"].zero_()
    for name, (out_f, in_f) in {
        "box_head.fc1": (fc, fpn * 49),
        "box_head.fc2": (fc, fc),
        "box_predictor.cls_score": (2, fc),
        "box_predictor.bbox_pred": (4, fc),
    }.items():
        state[f"roi_heads.{name}.weight"] = torch.randn(out_f, in_f) * (2.0 / in_f) ** 0.5
        state[f"roi_heads.{name}.bias"] = torch.zeros(out_f)
    state["roi_heads.box_predictor.cls_score.weight"].zero_()
    state["roi_heads.box_predictor.bbox_pred.weight"].zero_()
    for level, convs in {"p2": 1, "p3": 1, "p4": 2, "p5": 3}.items():
        for i in range(convs):
            _conv(state, f"roi_heads.decoder.{level}.{2 * i}", fpn, fpn, 3)
    _conv(state, "roi_heads.decoder.predictor", fpn, fpn, 1)
    for i in range(1, 9):
        _conv(state, f"roi_heads.densepose_head.body_conv_fcn{i}", head, fpn if i == 1 else head, 3)
    for name, channels in {"ann_index_lowres": 2, "index_uv_lowres": 25, "u_lowres": 25, "v_lowres": 25}.items():
        state[f"roi_heads.densepose_predictor.{name}.weight"] = torch.randn(head, channels, 4, 4) * 0.01
        state[f"roi_heads.densepose_predictor.{name}.bias"] = torch.zeros(channels)
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
