"""Write a tiny DensePose R-CNN (`densepose_rcnn_R_50_FPN_s1x` at reduced widths) as a model-zoo `.pkl`.

The file has the released model's 335 tensor names (ResNet-50 3-4-6-3 bottlenecks with FrozenBN, FPN p2-p5,
RPN with 3 anchors, 2-FC box head, DensePose decoder, 8-conv head, chart predictor) and the detectron2
model-zoo layout: a protocol-3 pickle of `{"model": {name: float32 ndarray}, "__author__": ...}`. Widths:
stem 8, res2 16 (bottleneck 4, doubling per stage), FPN 16, box FC 64, DensePose head 32.

Weights come from one seeded generator: convolutions and FCs N(0, 1/fan_in), FrozenBN scales 1 + 0.1 N,
shifts 0.05 N, running means 0.1 N and running variances 0.5 + U(0, 1) (so eps and the statistics matter),
biases 0.05 N. Two heads are biased so that random weights still detect a few people with varied parts:
the RPN objectness favours the square anchor, both box regressions are scaled down (boxes stay near
their anchors), and the box classifier's weights are scaled down and its
person logit biased far below the background one, so that only the strongest few proposals pass 0.05.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from densepose_node.checkpoint_layout import concrete_layout, resnet50_fpn_widths

SEED = 2024
STEM, RES2, WIDTH, FPN, BOX_FC, HEAD = 8, 16, 4, 16, 64, 32
PERSON_LOGIT = -12.5  # background logit bias 0: only the highest-scoring proposals pass 0.05
CLS_WEIGHT_SCALE = 0.3  # keeps the person-vs-background logits within a few units of each other
DELTA_WEIGHT_SCALE = 0.1  # small box regressions: proposals and detections stay close to their anchors


def tensor_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name of the R_50_FPN_s1x DensePose checkpoint with its tiny shape."""
    return concrete_layout(resnet50_fpn_widths(STEM, RES2, WIDTH, FPN, BOX_FC, HEAD))


def draw(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    normal = rng.standard_normal(shape)
    if name.endswith("running_var"):
        return 0.5 + rng.random(shape)
    if name.endswith("running_mean"):
        return 0.1 * normal
    if len(shape) >= 2:
        fan_in = shape[0] * int(np.prod(shape[2:])) if "densepose_predictor" in name else int(np.prod(shape[1:]))
        return normal / np.sqrt(fan_in)
    if name.endswith("norm.weight"):
        return 1 + 0.1 * normal
    return 0.05 * normal


def tiny_state() -> dict[str, np.ndarray]:
    """The tiny model's tensors, drawn from `SEED`, with the detection biases set."""
    rng = np.random.default_rng(SEED)
    state = {name: draw(name, shape, rng).astype(np.float32) for name, shape in tensor_shapes().items()}
    state["proposal_generator.rpn_head.objectness_logits.bias"] = np.array([0, 1, 0], np.float32)
    state["roi_heads.box_predictor.cls_score.weight"] *= CLS_WEIGHT_SCALE
    state["proposal_generator.rpn_head.anchor_deltas.weight"] *= DELTA_WEIGHT_SCALE
    state["roi_heads.box_predictor.bbox_pred.weight"] *= DELTA_WEIGHT_SCALE
    state["roi_heads.box_predictor.cls_score.bias"] = np.array([PERSON_LOGIT, 0], np.float32)
    state["roi_heads.densepose_predictor.ann_index_lowres.bias"] = np.array([-0.5, 0.5], np.float32)
    return state


def write_densepose_pkl(path: str | Path) -> Path:
    """Write the tiny model as a detectron2 model-zoo pickle at `path` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump({"model": tiny_state(), "__author__": "tests/tiny_densepose.py"}, handle, protocol=3)
    return path
