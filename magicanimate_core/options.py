"""Knobs of the sampler: output-changing options (off by default) and exact speed-ups/memory levers."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

CHANNELS_LAST_MODELS = ("unet", "controlnet", "vae", "appearance_encoder")
# CPU: where NHWC measured faster on a quiet machine (`python -m bench.components_small --rounds 3`, bench/RESULTS.md):
# VAE 0.88x, ControlNet 0.87x, UNet 0.95x the contiguous time; the appearance encoder (1.05x) stays contiguous.
CPU_CHANNELS_LAST: frozenset[str] = frozenset({"unet", "controlnet", "vae"})

WINOGRAD_DECODE_MAX_THREADS = 2  # `Speedups.split_decode`: the thread counts it was measured faster on

# user-facing window weighting names (nodes, CLI) -> SamplingOptions.window_weighting
WINDOW_WEIGHTINGS = {"uniform": "average", "pyramid": "pyramid"}


@dataclass(frozen=True)
class SamplingOptions:
    """Choices that change the output; the defaults are the original's."""

    closed_loop: bool = True  # the last window wraps around to the first frames
    window_weighting: str = "average"  # or "pyramid": favour window centres when fusing overlaps
    scheduler: str = "ddim"  # or "dpmpp": DPM-Solver++ (2M), good with fewer steps
    guidance_until: float = 1.0  # fraction of the steps that use classifier-free guidance
    deep_feature_reuse: int = 0  # recompute the deep UNet features every N steps (0/1: every step, the original)

    def __post_init__(self) -> None:
        if not 0.0 <= self.guidance_until <= 1.0:
            raise ValueError(f"guidance_until must be in [0, 1]; got {self.guidance_until}")
        reuse = self.deep_feature_reuse
        if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 0:
            raise ValueError(
                f"deep_feature_reuse must be a whole number >= 0 (steps between full UNet runs); got {reuse!r}. "
                "Use 0 or 1 for the original output, 2 or 3 for speed."
            )

    @property
    def changed(self) -> tuple[str, ...]:
        """`name=value` for every option that differs from the original's behaviour."""
        default = SamplingOptions()
        return tuple(
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )


@dataclass(frozen=True)
class Speedups:
    """Switches that leave the output unchanged (up to floating-point reordering).

    The last two are memory levers: slower, for devices that cannot hold a whole window's work.
    """

    share_down_path: bool = True  # both guidance halves share the UNet's down path: run it once
    windows_per_call: int = 1  # context windows batched into one UNet call
    decode_batch_size: int = 1  # frames per VAE decode call (CPU: 1 is fastest; `for_device` picks 8 on CUDA)
    decode_threads: int = 1  # CPU speed lever: frames decoded at once, one per thread (`threaded_decode`)
    winograd_decode: bool = True  # CPU, 1-2 threads: the VAE decoder's 3x3 convolutions by Winograd (`split_decode`)
    channels_last: bool | None = None  # NHWC convolutions; None = per device (`channels_last_models`)
    compile: bool = False  # torch.compile the UNet (fixed window shapes; first call is slow)
    sequential_cfg: bool = False  # memory lever: the two guidance halves in separate UNet calls
    offload: bool = False  # memory lever: each model on the device only while it runs
    enabled: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if self.windows_per_call < 1 or self.decode_batch_size < 1 or self.decode_threads < 1:
            raise ValueError("windows_per_call, decode_batch_size and decode_threads must be at least 1")
        flags = ("share_down_path", "winograd_decode", "channels_last", "compile", "sequential_cfg", "offload")
        names = [name for name in flags if getattr(self, name)]
        names += [f"windows_per_call={self.windows_per_call}", f"decode_batch_size={self.decode_batch_size}"]
        names += [f"decode_threads={self.decode_threads}"] if self.decode_threads > 1 else []
        object.__setattr__(self, "enabled", tuple(names))

    @classmethod
    def for_device(cls, device: torch.device | str) -> Speedups:
        """The defaults that measured fastest on `device` (bench/RESULTS.md): batched decode on CUDA only."""
        return cls(decode_batch_size=8) if torch.device(device).type == "cuda" else cls()

    def threaded_decode(self, device: torch.device | str) -> bool:
        """Whether the VAE decodes a frame per CPU thread (`parallel_decode.py`) on `device`.

        On 2 cores it decoded 16 frames 1.2-1.4x faster than the default's split frame work (`split_decode`) with
        convolutions split by channels, and 1.0-1.4x (a busy host) since they are split by rows, at 100-200 MiB
        more peak host memory (bench/RESULTS.md), which is why it is a lever and not the default.
        """
        return torch.device(device).type == "cpu" and self.decode_threads > 1

    def split_decode(self, device: torch.device | str) -> bool:
        """Whether the VAE decodes one frame at a time with each 3x3 convolution by Winograd, and each
        convolution split by rows, and each large GroupNorm by channels, over the CPU threads
        (`parallel_decode.split_each_frame`).

        Measured on 2 cores only (bench/RESULTS.md), so it applies with at most `WINOGRAD_DECODE_MAX_THREADS`
        threads, where Winograd on one thread beats oneDNN's direct convolutions on all of them.
        """
        return (
            torch.device(device).type == "cpu"
            and self.winograd_decode
            and not self.threaded_decode(device)
            and torch.get_num_threads() <= WINOGRAD_DECODE_MAX_THREADS
        )

    def channels_last_models(self, device: torch.device | str) -> frozenset[str]:
        """Models (of `CHANNELS_LAST_MODELS`) whose convolutions run in NHWC memory on `device`.

        `channels_last=None` picks per device: all on CUDA; on CPU only where it measured faster, and not the
        VAE when it decodes by Winograd (which takes contiguous images).
        """
        if self.channels_last is None:
            if torch.device(device).type == "cuda":
                return frozenset(CHANNELS_LAST_MODELS)
            winograd = self.threaded_decode(device) or self.split_decode(device)
            return CPU_CHANNELS_LAST - {"vae"} if winograd else CPU_CHANNELS_LAST
        return frozenset(CHANNELS_LAST_MODELS) if self.channels_last else frozenset()
