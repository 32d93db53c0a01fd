"""Exact fast paths for diffusers' own 2D blocks (VAE, ControlNet, appearance encoder, the UNet's upsamplers).

`install_fast_paths(model)` re-classes every eligible diffusers module of `model` to a subclass whose
`forward` does the same arithmetic with less work; parameters, buffers and state-dict names are untouched,
and a module outside a fast path's assumptions keeps diffusers' `forward`.

- `PhaseUpsample2D`: nearest 2x upsampling followed by a 3x3 convolution is four 2x2 convolutions on the
  small image (one per output pixel phase, kernels summed from the 3x3 taps that read the same source
  pixel): 16 taps per 2x2 output block instead of 36, and no upsampled copy of the input. On the CPU
  only: on CUDA, cuDNN's 3x3 kernels (Winograd) already save multiplies, and it was not measured there.
- `FastResnetBlock2D`: SiLU in place, the time embedding and the shortcut added in place, and no division
  by an `output_scale_factor` of 1 (each of those is a full pass over the activations in diffusers).
- `WinogradConv2d`: inside `winograd_scope()` (the CPU decode), a 3x3 convolution by Winograd's transform
  (`winograd.py`); the phase upsampler's kernels take the same path there.
- `ChannelSplitGroupNorm`, `PointwiseConv2d` (and the resnet's GroupNorm + SiLU): inside a
  `channel_split_scope` (the default CPU decode), computed in two halves of their channels on two threads at
  once (`channel_split.py`), as one call up to last-bit rounding (bitwise on the VAE decoder's layers); the
  Winograd convolutions there in two halves of their rows.
- `OneDnnLinear`: on AMD x86 CPUs, `nn.Linear` as a 1x1 convolution, so that oneDNN (which picks its
  kernels by instruction set) computes it instead of MKL (which picks them by CPU vendor).
- `ChunkedFeedForward`, `ChunkedConditioningEmbedding`: on the CPU, where peak resident memory is the
  budget, the feed-forward (per token) and the ControlNet's full-resolution conditioning embedding (per
  frame) run in slices of at most `CPU_CHUNK_ELEMENTS` intermediate values, so their largest temporaries
  stop growing with the batch.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D
from torch import nn

from . import channel_split
from .winograd import derived_kernels, winograd_applies, winograd_conv3x3

CPU_CHUNK_ELEMENTS = 1 << 22  # 16 MiB of fp32 per slice: large enough for full-speed GEMMs and convolutions
WINOGRAD_MIN_IN_CHANNELS = 16  # one thread: the VAE's 4-channel conv_in ran 1.6x slower by Winograd, 64+ faster
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row parity, column parity), in `_phase_kernels`' order


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """`(O, I, 3, 3)` taps -> `(4 O, I, 2, 2)`: the kernel of each output phase (row parity, column parity).

    On a 2x nearest-upsampled image, an even output row reads source rows (i-1, i, i) through kernel rows
    (0, 1, 2) and an odd one reads (i, i, i+1): so the phase-0 kernel rows are (w0, w1 + w2) and the
    phase-1 rows (w0 + w1, w2); the same holds for columns.
    """

    def fold(w: torch.Tensor, dim: int, phase: int) -> torch.Tensor:
        first, middle, last = w.unbind(dim)
        pair = (first, middle + last) if phase == 0 else (first + middle, last)
        return torch.stack(pair, dim)

    return torch.cat([fold(fold(weight, 2, row), 3, col) for row in (0, 1) for col in (0, 1)])


def _embedded_phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """`(4, O, I, 3, 3)`: each phase's 2x2 kernel at offset (row parity, column parity) of a 3x3 kernel."""
    phases = _phase_kernels(weight).chunk(4)
    return torch.stack([F.pad(kernel, (c, 1 - c, a, 1 - a)) for kernel, (a, c) in zip(phases, _PHASES)])


def _same_size_3x3(conv: nn.Conv2d) -> bool:
    """A plain 3x3 convolution that keeps the image size: stride 1, zero padding 1, no dilation or groups."""
    return (
        conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def nearest2x_conv3x3(images: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(F.interpolate(images, scale_factor=2, mode="nearest"))` for a 3x3, stride-1, padding-1 `conv`.

    The four phase kernels are 2x2: padding 1 gives `(h+1, w+1)` positions, and phase (a, c) reads the window
    starting at (a, c). They run as one convolution, stacked on its output channels, and the phases are
    interleaved into the output in the input's memory format. Under Winograd each phase runs on its own,
    its kernel at offset (a, c) of a 3x3 kernel (so reading the window at (0, 0); derived once per scope),
    straight into its place in the output: one phase is alive at a time, and NNPACK transforms a quarter of
    the kernels at once.
    """
    rows, _, height, width = images.shape
    channels_last = not images.is_contiguous() and images.is_contiguous(memory_format=torch.channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty(
        rows,
        conv.out_channels,
        2 * height,
        2 * width,
        dtype=images.dtype,
        device=images.device,
        memory_format=memory_format,
    )
    interleaved = out.unflatten(3, (width, 2)).unflatten(2, (height, 2))  # (n, c, h, 2, w, 2), a view
    if winograd_applies(images, conv.weight):  # a phase kernel pairs as many channels as `conv.weight`
        embedded = derived_kernels(conv.weight, _embedded_phase_kernels)
        for kernel, (a, c) in zip(embedded.unbind(), _PHASES):
            winograd_conv3x3(images, kernel, conv.bias, out=interleaved[:, :, :, a, :, c])
        return out
    kernels = _phase_kernels(conv.weight)
    bias = None if conv.bias is None else conv.bias.repeat(4)
    phases = F.conv2d(images, kernels.contiguous(memory_format=memory_format), bias, padding=1)
    phases = phases.unflatten(1, (2, 2, conv.out_channels))
    for a, c in _PHASES:
        interleaved[:, :, :, a, :, c] = phases[:, a, c, :, a : a + height, c : c + width]
    return out


class PhaseUpsample2D(Upsample2D):
    """`Upsample2D` (nearest 2x, then 3x3 conv) computed by `nearest2x_conv3x3`."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        conv = getattr(module, "conv", None)
        return (
            type(module) is Upsample2D
            and module.norm is None
            and module.interpolate
            and not module.use_conv_transpose
            and module.use_conv
            and module.name == "conv"
            and isinstance(conv, nn.Conv2d)
            and _same_size_3x3(conv)
        )

    def forward(self, hidden_states: torch.Tensor, output_size: tuple[int, int] | None = None, *args, **kwargs):
        height, width = hidden_states.shape[-2:]
        exact_2x = output_size is None or tuple(output_size) == (2 * height, 2 * width)
        if hidden_states.device.type != "cpu" or not exact_2x:  # measured on the CPU only (bench/RESULTS.md)
            return super().forward(hidden_states, output_size, *args, **kwargs)
        return nearest2x_conv3x3(hidden_states, self.conv)


class FastResnetBlock2D(ResnetBlock2D):
    """`ResnetBlock2D` without diffusers' out-of-place passes (inference; not the scale-shift time embedding)."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return (
            type(module) is ResnetBlock2D
            and module.upsample is None
            and module.downsample is None
            and module.time_embedding_norm != "scale_shift"
            and module.output_scale_factor == 1.0
            and isinstance(module.nonlinearity, nn.SiLU)
            and isinstance(module.norm1, nn.GroupNorm)
            and isinstance(module.norm2, nn.GroupNorm)
        )

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None, *args, **kwargs) -> torch.Tensor:
        if self.training:
            return super().forward(input_tensor, temb, *args, **kwargs)
        hidden = self.conv1(channel_split.group_norm(self.norm1, input_tensor, silu=True))
        if temb is not None and self.time_embedding_norm == "default":  # other norms ignore `temb` here
            if self.time_emb_proj is not None:
                temb = self.time_emb_proj(temb if self.skip_time_act else F.silu(temb))[:, :, None, None]
            hidden += temb
        hidden = channel_split.group_norm(self.norm2, hidden, silu=True)  # frees conv1's output before conv2
        hidden = self.conv2(hidden)
        hidden += input_tensor if self.conv_shortcut is None else self.conv_shortcut(input_tensor)
        return hidden


class ChannelSplitGroupNorm(nn.GroupNorm):
    """`nn.GroupNorm`; inside a `channel_split_scope`, by halves of its groups on two threads."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return type(module) is nn.GroupNorm

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return channel_split.group_norm(self, input)


class PointwiseConv2d(nn.Conv2d):
    """A 1x1, stride-1, unpadded `nn.Conv2d`; inside a `channel_split_scope`, by halves of its output channels
    on two threads."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return (
            type(module) is nn.Conv2d
            and module.kernel_size == (1, 1)
            and module.stride == (1, 1)
            and module.padding == (0, 0)
            and module.dilation == (1, 1)
            and module.groups == 1
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        out = channel_split.pointwise_conv(self, input)
        return super().forward(input) if out is None else out


class WinogradConv2d(nn.Conv2d):
    """A 3x3, stride-1, padding-1 `nn.Conv2d`; inside `winograd_scope()` computed by Winograd (NNPACK)."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return (
            type(module) is nn.Conv2d
            and _same_size_3x3(module)
            and module.in_channels >= WINOGRAD_MIN_IN_CHANNELS
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if winograd_applies(input, self.weight):
            return winograd_conv3x3(input, self.weight, self.bias)
        return super().forward(input)


def _cpu_vendor() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    return platform.processor()  # Windows: "... AuthenticAMD" / "... GenuineIntel"


@functools.cache
def onednn_gemm_preferred() -> bool:
    """Whether this is an AMD x86-64 CPU, where oneDNN's matrix products beat MKL's (bench/RESULTS.md)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and torch.backends.mkldnn.is_available() and "AuthenticAMD" in _cpu_vendor()


class OneDnnLinear(nn.Linear):
    """`nn.Linear` computed as a 1x1 convolution over the rows (oneDNN) on AMD x86 CPUs.

    MKL, PyTorch's CPU matrix product, chooses its kernels by CPU vendor; on an AMD EPYC its products for
    this model's layers (64-256 inputs) ran 1.1-1.9x slower than oneDNN's convolution of the same rows.
    The same products, summed in another order. Elsewhere (and off the CPU, or in training) it is `nn.Linear`.
    """

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return type(module) is nn.Linear

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if (
            input.device.type != "cpu"
            or input.dtype != torch.float32
            or torch.is_grad_enabled()
            or input.numel() == 0
            or not onednn_gemm_preferred()
        ):
            return super().forward(input)
        rows = input.reshape(-1, self.in_features).contiguous()
        images = rows.view(1, rows.shape[0], 1, self.in_features).permute(0, 3, 1, 2)  # channels-last, a view
        out = F.conv2d(images, self.weight[:, :, None, None], self.bias)  # (1, out, rows, 1), channels-last
        return out.permute(0, 2, 3, 1).reshape(*input.shape[:-1], self.out_features)


class ChunkedFeedForward(FeedForward):
    """`FeedForward`, on the CPU in slices of tokens whose widest intermediate fits `CPU_CHUNK_ELEMENTS`."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return type(module) is FeedForward and isinstance(module.net[-1], nn.Linear)

    def _widest(self) -> int:
        return max(m.out_features for m in self.modules() if isinstance(m, nn.Linear))

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        per_slice = max(1, CPU_CHUNK_ELEMENTS // self._widest())
        tokens = hidden_states.shape[:-1].numel()
        if hidden_states.device.type != "cpu" or tokens <= per_slice:
            return super().forward(hidden_states, *args, **kwargs)
        flat = hidden_states.reshape(tokens, hidden_states.shape[-1])
        out = flat.new_empty(tokens, self.net[-1].out_features)
        for start in range(0, tokens, per_slice):
            out[start : start + per_slice] = super().forward(flat[start : start + per_slice])
        return out.view(*hidden_states.shape[:-1], out.shape[-1])


class ChunkedConditioningEmbedding(ControlNetConditioningEmbedding):
    """ControlNet's conditioning embedding, on the CPU a few frames at a time (it is per frame)."""

    @staticmethod
    def applies_to(module: nn.Module) -> bool:
        return type(module) is ControlNetConditioningEmbedding

    def forward(self, conditioning: torch.Tensor) -> torch.Tensor:
        frames = conditioning.shape[0]
        per_frame = self.conv_in.out_channels * conditioning.shape[-2:].numel()
        per_slice = max(1, CPU_CHUNK_ELEMENTS // per_frame)
        if conditioning.device.type != "cpu" or frames <= per_slice:
            return super().forward(conditioning)
        embed = super().forward
        return torch.cat([embed(conditioning[i : i + per_slice]) for i in range(0, frames, per_slice)])


FAST_PATHS: tuple[type[nn.Module], ...] = (
    PhaseUpsample2D,
    FastResnetBlock2D,
    WinogradConv2d,
    ChannelSplitGroupNorm,
    PointwiseConv2d,
    OneDnnLinear,
    ChunkedFeedForward,
    ChunkedConditioningEmbedding,
)


def install_fast_paths(model: nn.Module) -> int:
    """Re-class every module of `model` that a fast path applies to; returns how many were changed."""
    changed = 0
    for module in model.modules():
        for fast in FAST_PATHS:
            if fast.applies_to(module):
                module.__class__ = fast
                changed += 1
                break
    return changed
