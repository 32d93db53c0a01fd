"""MagicAnimate_SamplerOptions: everything the core can do beyond the defaults, as one optional Sampler input."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from ..magicanimate_core.devices import parse_devices
from ..magicanimate_core.options import WINDOW_WEIGHTINGS, SamplingOptions, Speedups
from ..magicanimate_core.scheduling import SCHEDULERS

OPTIONS_TYPE = "MAGICANIMATE_OPTIONS"


@dataclass(frozen=True)
class SamplerSettings:
    """What a MAGICANIMATE_OPTIONS socket carries; the defaults are the Sampler's behaviour without one."""

    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    speedup_changes: dict = field(default_factory=dict)  # Speedups fields set on the node (memory levers)
    keep_model_loaded: bool = True
    devices: tuple[torch.device, ...] = ()  # the windows' devices; empty = ComfyUI's device alone

    def speedups(self, device: torch.device) -> Speedups:
        """The pipeline's own speed-up defaults for `device` with this node's memory levers applied."""
        return dataclasses.replace(Speedups.for_device(device), **self.speedup_changes)


class MagicAnimate_SamplerOptions:
    DESCRIPTION = (
        "Optional settings for 'MagicAnimate Sampler'. The defaults reproduce the original exactly. scheduler, "
        "window_weighting, closed_loop, guidance_until and deep_feature_reuse change the result; sequential_cfg, "
        "offload and decode_batch_size only trade speed for GPU memory (the result stays the same); decode_threads "
        "speeds up decoding on a CPU for some RAM; devices shares the work between several GPUs (the result stays "
        "the same)."
    )
    CATEGORY = "MagicAnimate"
    FUNCTION = "build"
    RETURN_TYPES = (OPTIONS_TYPE,)
    RETURN_NAMES = ("options",)
    OUTPUT_TOOLTIPS = ("Connect to the sampler's 'options' input.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "scheduler": (
                    list(SCHEDULERS),
                    {"default": "ddim", "tooltip": "ddim = as released; dpmpp = DPM-Solver++ 2M, good with ~15 steps."},
                ),
                "window_weighting": (
                    list(WINDOW_WEIGHTINGS),
                    {
                        "default": "uniform",
                        "tooltip": "How overlapping windows are merged: uniform = plain average (as released), "
                        "pyramid = favour each window's centre (smoother seams).",
                    },
                ),
                "closed_loop": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "The last window wraps around to the first frames (as released)."},
                ),
                "guidance_until": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "Fraction of the steps that use guidance; lower is faster (1.0 = every step).",
                    },
                ),
                "sequential_cfg": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "Memory lever: the two guidance halves one after the other."},
                ),
                "offload": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "Memory lever: each network on the GPU only while it runs (slow)."},
                ),
                "decode_batch_size": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 64,
                        "tooltip": "Memory lever: frames per VAE decode call (0 = the default, 1 = least memory).",
                    },
                ),
                "keep_model_loaded": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Keep the weights on the GPU after the run (ComfyUI still unloads them when "
                        "another model needs the memory); off = back to the offload device at once.",
                    },
                ),
            },
            "optional": {
                "devices": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Share the context windows of every step between several GPUs of this machine, "
                        "e.g. cuda:0,cuda:1: one copy of the networks per GPU, the same result, faster on long "
                        "clips. Empty = ComfyUI's device only.",
                    },
                ),
                "deep_feature_reuse": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 10,
                        "tooltip": "Speed, changes the result: recompute the deep UNet features every N steps and "
                        "reuse them in between (DeepCache-style; 0 or 1 = every step, as released; 2 = fewer full "
                        "UNet runs).",
                    },
                ),
                "decode_threads": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 64,
                        "tooltip": "CPU speed lever: decode this many frames at once, one per CPU thread, with "
                        "Winograd convolutions (up to 1.3x faster decoding than 1 on 2 threads, more RAM; the "
                        "result stays the same up to rounding). 1 = one frame at a time; on 1-2 CPU threads each "
                        "convolution is split over them, also by Winograd.",
                    },
                ),
            },
        }

    def build(
        self,
        scheduler: str,
        window_weighting: str,
        closed_loop: bool,
        guidance_until: float,
        sequential_cfg: bool,
        offload: bool,
        decode_batch_size: int,
        keep_model_loaded: bool,
        devices: str = "",
        deep_feature_reuse: int = 0,
        decode_threads: int = 1,
    ) -> tuple[SamplerSettings]:
        if window_weighting not in WINDOW_WEIGHTINGS:
            raise ValueError(f"unknown window_weighting {window_weighting!r}; choose {', '.join(WINDOW_WEIGHTINGS)}")
        sampling = SamplingOptions(
            closed_loop=closed_loop,
            window_weighting=WINDOW_WEIGHTINGS[window_weighting],
            scheduler=scheduler,
            guidance_until=guidance_until,
            deep_feature_reuse=deep_feature_reuse,
        )
        changes: dict = {"sequential_cfg": sequential_cfg, "offload": offload}
        if decode_batch_size:
            changes["decode_batch_size"] = decode_batch_size
        if decode_threads > 1:
            changes["decode_threads"] = decode_threads
        return (SamplerSettings(sampling, changes, keep_model_loaded, tuple(parse_devices(devices))),)
