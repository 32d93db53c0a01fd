"""MagicAnimate's networks: the 3D UNet with motion modules, and the appearance encoder."""

from .appearance_encoder import PRUNED_KEYS, AppearanceEncoder
from .fast_paths import install_fast_paths
from .motion_module import MAX_FRAMES
from .reference_attention import ReferenceBank, ReferenceState, install_plain_processors, install_readers
from .unet3d import UNet3DConditionModel

__all__ = [
    "MAX_FRAMES",
    "PRUNED_KEYS",
    "AppearanceEncoder",
    "ReferenceBank",
    "ReferenceState",
    "UNet3DConditionModel",
    "install_fast_paths",
    "install_plain_processors",
    "install_readers",
]
