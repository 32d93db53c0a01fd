"""MagicAnimate (NUS + ByteDance, 2023) on current diffusers/PyTorch, without ComfyUI."""
