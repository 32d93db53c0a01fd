"""The pack's ComfyUI nodes (V1 API). Keys are public API: workflows store them, never rename one."""

from . import comfy_adapter
from .crop_to_reference import MagicAnimate_CropToReference
from .load_reference import MagicAnimate_LoadReference
from .load_video import MagicAnimate_LoadVideo
from .model_loader import MODEL_FOLDER, MagicAnimate_ModelLoader
from .retarget_motion import MagicAnimate_RetargetMotion
from .sampler import MagicAnimate_Sampler
from .sampler_options import MagicAnimate_SamplerOptions
from .save_video import MagicAnimate_SaveVideo
from .video_to_densepose import WEIGHTS_EXTENSIONS, WEIGHTS_FOLDER, MagicAnimate_VideoToDensePose

comfy_adapter.register_model_folder(MODEL_FOLDER)
comfy_adapter.register_model_folder(WEIGHTS_FOLDER, WEIGHTS_EXTENSIONS)

NODE_CLASS_MAPPINGS = {
    "MagicAnimate_LoadReference": MagicAnimate_LoadReference,
    "MagicAnimate_LoadVideo": MagicAnimate_LoadVideo,
    "MagicAnimate_VideoToDensePose": MagicAnimate_VideoToDensePose,
    "MagicAnimate_ModelLoader": MagicAnimate_ModelLoader,
    "MagicAnimate_Sampler": MagicAnimate_Sampler,
    "MagicAnimate_SaveVideo": MagicAnimate_SaveVideo,
    "MagicAnimate_SamplerOptions": MagicAnimate_SamplerOptions,
    "MagicAnimate_CropToReference": MagicAnimate_CropToReference,
    "MagicAnimate_RetargetMotion": MagicAnimate_RetargetMotion,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "MagicAnimate_LoadReference": "Load Reference (MagicAnimate)",
    "MagicAnimate_LoadVideo": "Load Video (MagicAnimate)",
    "MagicAnimate_VideoToDensePose": "Video to DensePose (MagicAnimate)",
    "MagicAnimate_ModelLoader": "MagicAnimate Model Loader",
    "MagicAnimate_Sampler": "MagicAnimate Sampler",
    "MagicAnimate_SaveVideo": "Save Video (MagicAnimate)",
    "MagicAnimate_SamplerOptions": "MagicAnimate Sampler Options",
    "MagicAnimate_CropToReference": "Crop To Reference (MagicAnimate)",
    "MagicAnimate_RetargetMotion": "Retarget Motion to Reference (MagicAnimate)",
}
