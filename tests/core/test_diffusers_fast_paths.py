"""Fast paths for diffusers' own blocks compute what diffusers computes, and load weights once."""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import ControlNetModel
from diffusers.models.attention import FeedForward
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D

from magicanimate_core.loading import load_models
from magicanimate_core.models import fast_paths, winograd
from magicanimate_core.models.fast_paths import (
    ChunkedConditioningEmbedding,
    ChunkedFeedForward,
    FastResnetBlock2D,
    OneDnnLinear,
    PhaseUpsample2D,
    WinogradConv2d,
    install_fast_paths,
    nearest2x_conv3x3,
)
from magicanimate_core.models.winograd import MAX_KERNEL_PAIRS, winograd_available, winograd_scope
from tests.tiny_checkpoints import CONTROLNET_CONFIG, randomize

FORMATS = [torch.contiguous_format, torch.channels_last]


def _plain_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The same module with diffusers' forward everywhere (the fast classes subclass diffusers')."""
    for sub in module.modules():
        if type(sub) in fast_paths.FAST_PATHS:
            sub.__class__ = type(sub).__base__
    return module


@pytest.mark.parametrize("memory_format", FORMATS)
@pytest.mark.parametrize("bias", [True, False])
def test_phase_convolution_equals_upsample_then_conv(memory_format, bias: bool) -> None:
    conv = randomize(torch.nn.Conv2d(24, 16, 3, padding=1, bias=bias), seed=1).to(memory_format=memory_format)
    images = torch.randn(3, 24, 5, 7).contiguous(memory_format=memory_format)
    with torch.no_grad():
        expected = conv(F.interpolate(images, scale_factor=2.0, mode="nearest"))
        out = nearest2x_conv3x3(images, conv)
    assert out.shape == (3, 16, 10, 14)
    assert out.is_contiguous(memory_format=memory_format)
    assert (out - expected).abs().max() <= 1e-5 * expected.abs().max()


WINOGRAD_RELATIVE_ERROR = 2e-5  # a wrong tap or phase is off by the output's whole scale
needs_nnpack = pytest.mark.skipif(not winograd_available(), reason="this PyTorch build has no NNPACK")


def _double(bias: torch.Tensor | None) -> torch.Tensor | None:
    return None if bias is None else bias.double()


@needs_nnpack
@pytest.mark.parametrize("bias", [True, False])
def test_winograd_convolution_runs_inside_its_scope_only_and_equals_the_direct_one(nnpack_calls, bias: bool) -> None:
    conv = randomize(torch.nn.Conv2d(24, 16, 3, padding=1, bias=bias), seed=8)
    image = torch.randn(1, 24, 19, 23, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact = F.conv2d(image.double(), conv.weight.double(), _double(conv.bias), padding=1)
        direct = conv(image)
        assert install_fast_paths(conv) == 1 and type(conv) is WinogradConv2d
        assert torch.equal(conv(image), direct) and nnpack_calls == []  # outside a scope: PyTorch's convolution
        with winograd_scope():
            winograd = conv(image)
            conv(torch.randn(2, 24, 19, 23))  # one image at a time only
            conv(image.to(memory_format=torch.channels_last))  # contiguous only
            copy.deepcopy(conv).double()(image.double())  # float32 only
    with winograd_scope():
        conv(image)  # not under autograd
    assert [shape for _, shape in nnpack_calls] == [(1, 24, 19, 23)]
    # F(6x6, 3x3) in float32: at most 1.4e-5 of the output's scale over 200 random images of this size
    assert (winograd.double() - exact).abs().max() <= WINOGRAD_RELATIVE_ERROR * exact.abs().max()


@needs_nnpack
def test_winograd_bands_of_whole_tiles_give_the_sums_of_one_call(monkeypatch, nnpack_calls) -> None:
    weight, bias = torch.randn(16, 24, 3, 3) / 10, torch.randn(16)
    image = torch.randn(1, 24, 40, 19)
    whole = winograd.winograd_conv3x3(image, weight, bias)
    nnpack_calls.clear()
    monkeypatch.setattr(winograd, "BAND_ELEMENTS", (24 + 16) * 19 * 13)  # 12 rows a band: 4 bands of 40 rows
    banded = winograd.winograd_conv3x3(image, weight, bias)
    shapes = [shape for _, shape in nnpack_calls]  # each band with its halo rows or zero padding
    assert shapes == [(1, 24, 14, 19)] * 3 + [(1, 24, 6, 19)]
    assert torch.equal(banded, whole)


def test_winograd_convolution_applies_to_3x3_stride_1_convolutions_of_16_or_more_inputs() -> None:
    eligible = torch.nn.Conv2d(16, 8, 3, padding=1)
    others = [
        torch.nn.Conv2d(4, 8, 3, padding=1),  # the VAE's conv_in: slower by Winograd on one thread
        torch.nn.Conv2d(16, 8, 3, stride=2, padding=1),
        torch.nn.Conv2d(16, 8, 3, padding=1, padding_mode="reflect"),
    ]
    assert install_fast_paths(eligible) == 1 and type(eligible) is WinogradConv2d
    for conv in others:
        assert install_fast_paths(conv) == 0 and type(conv) is torch.nn.Conv2d


@needs_nnpack
@pytest.mark.parametrize("bias", [True, False])
def test_phase_convolution_by_winograd_equals_upsample_then_conv(nnpack_calls, bias: bool) -> None:
    conv = randomize(torch.nn.Conv2d(24, 16, 3, padding=1, bias=bias), seed=9)
    image = torch.randn(1, 24, 5, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        upsampled = F.interpolate(image.double(), scale_factor=2.0, mode="nearest")
        expected = F.conv2d(upsampled, conv.weight.double(), _double(conv.bias), padding=1)
        with winograd_scope():
            out = nearest2x_conv3x3(image, conv)
    assert [shape for _, shape in nnpack_calls] == [(1, 24, 5, 7)] * 4  # a phase at a time
    assert out.shape == (1, 16, 10, 14) and out.is_contiguous()
    assert (out.double() - expected).abs().max() <= WINOGRAD_RELATIVE_ERROR * expected.abs().max()


@needs_nnpack
def test_phase_convolution_counts_one_phase_against_the_winograd_kernel_limit(nnpack_calls) -> None:
    channels = math.isqrt(MAX_KERNEL_PAIRS)  # four stacked phases would be over the limit, one is not
    conv = randomize(torch.nn.Conv2d(channels, channels, 3, padding=1), seed=3)
    image = torch.randn(1, channels, 3, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), winograd_scope():
        out = nearest2x_conv3x3(image, conv)
    assert len(nnpack_calls) == 4 and out.shape == (1, channels, 6, 8)


def test_phase_upsampler_falls_back_for_other_sizes_and_keeps_state_dict_names() -> None:
    upsampler = randomize(Upsample2D(8, use_conv=True, out_channels=8), seed=2)
    names = list(upsampler.state_dict())
    images = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        plain_odd, plain_even = upsampler(images, (9, 11)), upsampler(images)
        assert install_fast_paths(upsampler) == 1
        assert type(upsampler) is PhaseUpsample2D and list(upsampler.state_dict()) == names
        assert torch.equal(upsampler(images, (9, 11)), plain_odd)  # not 2x: diffusers' own path
        assert (upsampler(images, (10, 10)) - plain_even).abs().max() < 1e-5
    transposed = Upsample2D(8, use_conv_transpose=True, out_channels=8)
    assert install_fast_paths(transposed) == 0 and type(transposed) is Upsample2D


def test_phase_upsampler_is_cpu_only(monkeypatch) -> None:
    upsampler = Upsample2D(8, use_conv=True, out_channels=8).to("meta")
    install_fast_paths(upsampler)
    monkeypatch.setattr(fast_paths, "nearest2x_conv3x3", lambda *_: pytest.fail("phase path off the CPU"))
    assert upsampler(torch.empty(2, 8, 5, 5, device="meta")).shape == (2, 8, 10, 10)


@pytest.mark.parametrize("memory_format", FORMATS)
@pytest.mark.parametrize(
    ("in_channels", "out_channels", "temb_channels", "norm"),
    [(16, 16, 12, "default"), (16, 32, 12, "default"), (16, 32, None, "group")],
)
def test_fast_resnet_is_bitwise_diffusers(
    monkeypatch, memory_format, in_channels, out_channels, temb_channels, norm
) -> None:
    monkeypatch.setattr(fast_paths, "onednn_gemm_preferred", lambda: False)  # the time embedding's linear as MKL's
    block = ResnetBlock2D(
        in_channels=in_channels,
        out_channels=out_channels,
        temb_channels=temb_channels,
        groups=8,
        time_embedding_norm=norm,
    )
    block = randomize(block, seed=3).eval().to(memory_format=memory_format)
    images = torch.randn(2, in_channels, 6, 6).contiguous(memory_format=memory_format)
    temb = None if temb_channels is None else torch.randn(2, temb_channels)
    with torch.no_grad():
        expected = block(images, temb)
        # the block, its two 3x3 convolutions (Winograd only inside a scope), its two GroupNorms (split by
        # channels only inside a scope), its linear and its 1x1 shortcut
        assert install_fast_paths(block) == 5 + (temb_channels is not None) + (in_channels != out_channels)
        assert type(block) is FastResnetBlock2D
        out = block(images, temb)
    assert torch.equal(out, expected)


def test_resnet_outside_the_fast_path_keeps_diffusers_forward() -> None:
    scale_shift = ResnetBlock2D(in_channels=8, temb_channels=4, groups=4, time_embedding_norm="scale_shift")
    rescaled = ResnetBlock2D(in_channels=8, temb_channels=4, groups=4, output_scale_factor=2.0)
    downsampling = ResnetBlock2D(in_channels=8, temb_channels=4, groups=4, down=True)
    for block in (scale_shift, rescaled, downsampling):
        # only its time embedding's linear and its GroupNorms
        assert install_fast_paths(block) == 3 and type(block) is ResnetBlock2D
        assert type(block.time_emb_proj) is OneDnnLinear


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_feed_forward_runs_in_slices_on_the_cpu_with_the_same_result(monkeypatch) -> None:
    ff = randomize(FeedForward(16, activation_fn="geglu"), seed=4)  # widest intermediate: 2 x 64
    tokens = torch.randn(6, 50, 16)
    with torch.no_grad():
        expected = ff(tokens)
        install_fast_paths(ff)
        assert type(ff) is ChunkedFeedForward
        calls = _count_calls(ff.net[0])
        monkeypatch.setattr(fast_paths, "CPU_CHUNK_ELEMENTS", 128 * 70)  # 70 tokens a slice: 5 slices
        out = ff(tokens)
    assert calls[0] == 5
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, rtol=0, atol=1e-6)


def test_conditioning_embedding_runs_a_few_frames_at_a_time_with_the_same_result(monkeypatch) -> None:
    embedding = randomize(ControlNetConditioningEmbedding(32, block_out_channels=(8, 16)), seed=5)
    frames = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        expected = embedding(frames)
        install_fast_paths(embedding)
        assert type(embedding) is ChunkedConditioningEmbedding
        calls = _count_calls(embedding.conv_in)
        monkeypatch.setattr(fast_paths, "CPU_CHUNK_ELEMENTS", 8 * 16 * 16 * 2)  # two frames a slice
        out = embedding(frames)
    assert calls[0] == 3
    assert torch.allclose(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("rows", [(7,), (3, 50), "transposed"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_as_a_onednn_convolution_equals_linear(monkeypatch, rows, bias: bool) -> None:
    linear = randomize(torch.nn.Linear(16, 24, bias=bias), seed=7)
    tokens = torch.randn(16, 9).t() if rows == "transposed" else torch.randn(*rows, 16)
    convolutions: list[tuple[int, ...]] = []
    conv2d = F.conv2d

    def recorded(images, *args, **kwargs):
        convolutions.append(tuple(images.shape))
        return conv2d(images, *args, **kwargs)

    with torch.no_grad():
        expected = linear(tokens)
        assert install_fast_paths(linear) == 1 and type(linear) is OneDnnLinear
        monkeypatch.setattr(fast_paths, "onednn_gemm_preferred", lambda: True)  # whatever this CPU is
        monkeypatch.setattr(F, "conv2d", recorded)
        out = linear(tokens)
        monkeypatch.setattr(fast_paths, "onednn_gemm_preferred", lambda: False)
        plain = linear(tokens)
    assert convolutions == [(1, 16, expected[..., 0].numel(), 1)]
    assert out.shape == expected.shape and out.is_contiguous()
    assert (out - expected).abs().max() <= 1e-6 * expected.abs().max()
    assert torch.equal(plain, expected)


def test_installed_controlnet_and_vae_match_diffusers(tiny_pretrained_dir: Path) -> None:
    controlnet = randomize(ControlNetModel.from_config(CONTROLNET_CONFIG), seed=6).eval()
    vae = load_models(tiny_pretrained_dir).vae.eval()
    sample, control = torch.randn(2, 4, 8, 8), torch.rand(2, 3, 64, 64)
    text = torch.randn(2, 7, CONTROLNET_CONFIG["cross_attention_dim"])
    with torch.no_grad():
        assert install_fast_paths(controlnet) > 0 and install_fast_paths(vae) > 0
        fast = controlnet(sample, 10, text, control, return_dict=False), vae.decode(sample).sample
        _plain_copy(controlnet), _plain_copy(vae)
        plain = controlnet(sample, 10, text, control, return_dict=False), vae.decode(sample).sample
    for got, want in zip([*fast[0][0], fast[0][1]], [*plain[0][0], plain[0][1]], strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()  # no upsampler; linears summed in another order
    assert (fast[1] - plain[1]).abs().max() < 1e-5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_loaded_weights_do_not_keep_their_files_mapped(tiny_pretrained_dir: Path) -> None:
    models = load_models(tiny_pretrained_dir)
    mapped = Path("/proc/self/maps").read_text()  # read while the loaded models are alive
    del models
    for folder in ("sd-vae-ft-mse", "MagicAnimate/densepose_controlnet", "MagicAnimate/appearance_encoder"):
        assert str((tiny_pretrained_dir / folder).resolve()) not in mapped, folder


def test_kernels_derived_from_weights_are_kept_for_one_scope_and_follow_weight_updates() -> None:
    weight = torch.randn(4, 4, 3, 3)
    derivations: list[float] = []

    def derive(w: torch.Tensor) -> torch.Tensor:
        derivations.append(float(w.sum()))
        return w * 2

    winograd.derived_kernels(weight, derive)
    winograd.derived_kernels(weight, derive)
    assert len(derivations) == 2  # outside a scope: every call derives
    with winograd_scope():
        first = winograd.derived_kernels(weight, derive)
        assert winograd.derived_kernels(weight, derive) is first and len(derivations) == 3  # once per scope
        with torch.no_grad():
            weight += 1  # a weight update (a LoRA patch, a new load) is a new version
        assert torch.equal(winograd.derived_kernels(weight, derive), weight * 2) and len(derivations) == 4
    with winograd_scope():
        winograd.derived_kernels(weight, derive)
    assert len(derivations) == 5  # a new scope derives afresh
    with torch.inference_mode():
        loaded = torch.randn(4, 4, 3, 3)  # weights ComfyUI loads are inference tensors, without a version
    with winograd_scope():
        assert winograd.derived_kernels(loaded, derive) is winograd.derived_kernels(loaded, derive)
