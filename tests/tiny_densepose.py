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

SEED = 2024
STEM, RES2, WIDTH, FPN, BOX_FC, HEAD = 8, 16, 4, 16, 64, 32
BLOCKS = {"res2": 3, "res3": 4, "res4": 6, "res5": 3}
PERSON_LOGIT = -12.5  # background logit bias 0: only the highest-scoring proposals pass 0.05
CLS_WEIGHT_SCALE = 0.3  # keeps the person-vs-background logits within a few units of each other
DELTA_WEIGHT_SCALE = 0.1  # small box regressions: proposals and detections stay close to their anchors
FINE_PARTS = 25


def _conv_norm(shapes: dict[str, tuple[int, ...]], name: str, out: int, inp: int, kernel: int) -> None:
    shapes[f"{name}.weight"] = (out, inp, kernel, kernel)
    for part in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{name}.norm.{part}"] = (out,)


def _conv(shapes: dict[str, tuple[int, ...]], name: str, out: int, inp: int, kernel: int) -> None:
    shapes[f"{name}.weight"] = (out, inp, kernel, kernel)
    shapes[f"{name}.bias"] = (out,)


def tensor_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name of the R_50_FPN_s1x DensePose checkpoint with its tiny shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    _conv_norm(shapes, "backbone.bottom_up.stem.conv1", STEM, 3, 7)
    channels, inner, out = STEM, WIDTH, RES2
    for stage, count in BLOCKS.items():
        for index in range(count):
            block = f"backbone.bottom_up.{stage}.{index}"
            _conv_norm(shapes, f"{block}.conv1", inner, channels, 1)
            _conv_norm(shapes, f"{block}.conv2", inner, inner, 3)
            _conv_norm(shapes, f"{block}.conv3", out, inner, 1)
            if index == 0:
                _conv_norm(shapes, f"{block}.shortcut", out, channels, 1)
            channels = out
        level = int(stage[-1])
        _conv(shapes, f"backbone.fpn_lateral{level}", FPN, out, 1)
        _conv(shapes, f"backbone.fpn_output{level}", FPN, FPN, 3)
        inner, out = inner * 2, out * 2
    _conv(shapes, "proposal_generator.rpn_head.conv", FPN, FPN, 3)
    _conv(shapes, "proposal_generator.rpn_head.objectness_logits", 3, FPN, 1)
    _conv(shapes, "proposal_generator.rpn_head.anchor_deltas", 12, FPN, 1)
    for name, out_dim, in_dim in (("box_head.fc1", BOX_FC, FPN * 49), ("box_head.fc2", BOX_FC, BOX_FC),
                                  ("box_predictor.cls_score", 2, BOX_FC), ("box_predictor.bbox_pred", 4, BOX_FC)):
        shapes[f"roi_heads.{name}.weight"] = (out_dim, in_dim)
        shapes[f"roi_heads.{name}.bias"] = (out_dim,)
    for conv in ("p2.0", "p3.0", "p4.0", "p4.2", "p5.0", "p5.2", "p5.4"):
        _conv(shapes, f"roi_heads.decoder.{conv}", FPN, FPN, 3)
    _conv(shapes, "roi_heads.decoder.predictor", FPN, FPN, 1)
    for index in range(1, 9):
        _conv(shapes, f"roi_heads.densepose_head.body_conv_fcn{index}", HEAD, FPN if index == 1 else HEAD, 3)
    for name, outputs in (("ann_index_lowres", 2), ("index_uv_lowres", FINE_PARTS),
                          ("u_lowres", FINE_PARTS), ("v_lowres", FINE_PARTS)):
        shapes[f"roi_heads.densepose_predictor.{name}.weight"] = (HEAD, outputs, 4, 4)  # ConvTranspose2d
        shapes[f"roi_heads.densepose_predictor.{name}.bias"] = (outputs,)
    return shapes


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
