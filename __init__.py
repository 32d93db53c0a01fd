"""MagicAnimate for ComfyUI: this module only registers the pack's nodes."""

if __package__:  # ComfyUI always imports the pack as a package; pytest may import this file bare.
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
