"""DensePose estimators behind one interface: the built-in PyTorch R-CNN, or detectron2 when installed."""

from __future__ import annotations

import functools
import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .instances import DensePoseInstances
from .rcnn.model import DensePoseRCNN
from .render import render_frame
from .weights import WEIGHTS_FOLDER, WEIGHTS_URL, WeightsError, load_weights

BACKENDS = ("auto", "builtin", "detectron2")
DETECTRON2_INSTALL = (
    "pip install --no-build-isolation --use-pep517 --no-deps 'git+https://github.com/facebookresearch/detectron2.git' "
    "&& pip install --no-build-isolation --use-pep517 --no-deps "
    "'git+https://github.com/facebookresearch/detectron2.git#subdirectory=projects/DensePose' "
    "(plus detectron2's dependencies: fvcore iopath pycocotools omegaconf hydra-core yacs; and a torchvision "
    "whose ops run with your torch)"
)
# densepose_rcnn_R_50_FPN_s1x.yaml (+ Base-DensePose-RCNN-FPN.yaml) as config keys, over detectron2's defaults
# plus `add_densepose_config`; pixel mean, input size and thresholds other than these are detectron2 defaults.
R50_FPN_S1X_CONFIG = [
    "MODEL.META_ARCHITECTURE", "GeneralizedRCNN",
    "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone",
    "MODEL.RESNETS.DEPTH", 50,
    "MODEL.RESNETS.OUT_FEATURES", ["res2", "res3", "res4", "res5"],
    "MODEL.FPN.IN_FEATURES", ["res2", "res3", "res4", "res5"],
    "MODEL.ANCHOR_GENERATOR.SIZES", [[32], [64], [128], [256], [512]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0]],
    "MODEL.RPN.IN_FEATURES", ["p2", "p3", "p4", "p5", "p6"],
    "MODEL.RPN.PRE_NMS_TOPK_TEST", 1000,
    "MODEL.RPN.POST_NMS_TOPK_TEST", 1000,
    "MODEL.DENSEPOSE_ON", True,
    "MODEL.ROI_HEADS.NAME", "DensePoseROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES", ["p2", "p3", "p4", "p5"],
    "MODEL.ROI_HEADS.NUM_CLASSES", 1,
    "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead",
    "MODEL.ROI_BOX_HEAD.NUM_FC", 2,
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 7,
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", 2,
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlign",
    "MODEL.ROI_DENSEPOSE_HEAD.NAME", "DensePoseV1ConvXHead",
    "MODEL.ROI_DENSEPOSE_HEAD.POOLER_TYPE", "ROIAlign",
    "MODEL.ROI_DENSEPOSE_HEAD.NUM_COARSE_SEGM_CHANNELS", 2,
]  # fmt: skip


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says how to install it."""


class Estimator(ABC):
    """Frames (uint8 RGB [H, W, 3]) -> DensePose instances; rendering is shared by all backends."""

    name: str
    score_threshold: float = 0.05  # vid2densepose's (detectron2's SCORE_THRESH_TEST)

    @abstractmethod
    def detect(
        self, frames_rgb: Sequence[np.ndarray], score_threshold: float | None = None
    ) -> list[DensePoseInstances]:
        """One `DensePoseInstances` per frame: people with score > `score_threshold` (default: the
        estimator's), by descending score."""

    def render(
        self,
        frame_rgb: np.ndarray,
        score_threshold: float | None = None,
        max_people: int | None = None,
        colormap: str = "viridis",
    ) -> np.ndarray:
        """One frame's DensePose image, uint8 RGB at the frame's size."""
        [instances] = self.detect([frame_rgb], score_threshold)
        return render_frame(instances.filter(max_people=max_people), colormap)


class BuiltinEstimator(Estimator):
    """The pack's own DensePose R-CNN (pure PyTorch, no detectron2, no torchvision)."""

    name = "builtin"

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu") -> None:
        self.model = DensePoseRCNN.from_state_dict(load_weights(weights), source=str(weights)).to(device)

    def detect(
        self, frames_rgb: Sequence[np.ndarray], score_threshold: float | None = None
    ) -> list[DensePoseInstances]:
        if score_threshold is None:
            score_threshold = self.score_threshold
        return self.model([np.ascontiguousarray(frame[..., ::-1]) for frame in frames_rgb], score_threshold)


class Detectron2Estimator(Estimator):
    """detectron2's `DefaultPredictor` with vid2densepose's configuration (weights read by our safe loader)."""

    name = "detectron2"

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu", config_file: str | None = None) -> None:
        if not detectron2_available():
            raise BackendUnavailable(
                f"the detectron2 backend needs detectron2 and DensePose ({_detectron2_import_error()}); install: "
                f"{DETECTRON2_INSTALL}"
            )
        from densepose import add_densepose_config
        from detectron2.config import get_cfg
        from detectron2.engine import DefaultPredictor

        cfg = get_cfg()
        add_densepose_config(cfg)
        if config_file:
            cfg.merge_from_file(config_file)
        else:
            cfg.merge_from_list(R50_FPN_S1X_CONFIG)
        cfg.MODEL.WEIGHTS = ""  # never let detectron2 unpickle the file: load_weights reads it safely below
        cfg.MODEL.DEVICE = str(device)
        self.predictor = DefaultPredictor(cfg)
        missing, unexpected = self.predictor.model.load_state_dict(load_weights(weights), strict=False)
        missing = [key for key in missing if not key.startswith("pixel_")]
        if missing:
            raise WeightsError(f"{weights}: tensors missing for detectron2's DensePose R-CNN: {missing[:5]}")

    def detect(
        self, frames_rgb: Sequence[np.ndarray], score_threshold: float | None = None
    ) -> list[DensePoseInstances]:
        threshold = self.score_threshold if score_threshold is None else score_threshold
        self.predictor.model.roi_heads.box_predictor.test_score_thresh = threshold
        results = []
        for frame in frames_rgb:
            with torch.inference_mode():
                instances = self.predictor(np.ascontiguousarray(frame[..., ::-1]))["instances"].to("cpu")
            if len(instances) and instances.has("pred_densepose"):
                densepose = instances.pred_densepose
                boxes, scores = instances.pred_boxes.tensor, instances.scores
                coarse, fine = densepose.coarse_segm, densepose.fine_segm
            else:
                boxes, scores = torch.zeros(0, 4), torch.zeros(0)
                coarse, fine = torch.zeros(0, 2, 112, 112), torch.zeros(0, 25, 112, 112)
            results.append(DensePoseInstances(tuple(frame.shape[:2]), boxes, scores, coarse, fine))
        return results


@functools.cache
def _detectron2_import_error() -> str | None:
    """Why `detectron2.engine` or `densepose` cannot be imported (e.g. missing, or torchvision ops broken)."""
    try:
        importlib.import_module("detectron2.engine")
        importlib.import_module("densepose")
    except Exception as error:  # a broken install fails in many ways; all mean "not usable"
        return f"{type(error).__name__}: {error}"
    return None


def detectron2_available() -> bool:
    """True when both `detectron2` and its `densepose` project import (the first call imports them)."""
    return _detectron2_import_error() is None


def load_estimator(
    backend: str = "auto",
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    score_threshold: float = 0.05,
) -> Estimator:
    """An estimator: `builtin`, `detectron2`, or `auto` (detectron2 when importable, else builtin).

    `weights` is the model-zoo `.pkl` (or its converted `.safetensors`), e.g.
    `ComfyUI/models/densepose/model_final_162be9.pkl`; `device` defaults to the CPU; `score_threshold` is
    the default of `detect`/`render` (0.05 = vid2densepose).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown DensePose backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if weights is None:
        raise WeightsError(f"no DensePose weights given; download {WEIGHTS_URL} into ComfyUI/{WEIGHTS_FOLDER}/")
    device = device or "cpu"
    use_detectron2 = backend == "detectron2" or (backend == "auto" and detectron2_available())
    estimator = Detectron2Estimator(weights, device) if use_detectron2 else BuiltinEstimator(weights, device)
    estimator.score_threshold = score_threshold
    return estimator
