"""Built-in DensePose R-CNN (R_50_FPN_s1x layout) in plain PyTorch: no detectron2, no torchvision."""

from .model import DensePoseRCNN

__all__ = ["DensePoseRCNN"]
