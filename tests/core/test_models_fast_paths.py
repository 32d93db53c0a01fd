"""The UNet's layout fast paths compute what the plain 5-D formulation computes, in either memory format."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

from magicanimate_core.models import reference_attention
from magicanimate_core.models.frames import (
    add_video,
    batch_to_frames,
    frames_to_batch,
    group_norm_silu_over_frames,
    repeat_rows,
)
from magicanimate_core.models.motion_module import MotionModule
from magicanimate_core.models.reference_attention import (
    CPU_PAD_MIN_KEYS,
    CPU_PADDED_HEAD_DIM,
    PlainAttnProcessor,
    ReferenceBank,
    ReferenceReadProcessor,
    ReferenceState,
)
from magicanimate_core.models.resnet3d import ResnetBlock3D
from magicanimate_core.options import CHANNELS_LAST_MODELS, CPU_CHANNELS_LAST, Speedups

FORMATS = [torch.contiguous_format, torch.channels_last]


def _randomise(module: torch.nn.Module) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return module


@pytest.mark.parametrize("memory_format", FORMATS)
def test_group_norm_over_frames_matches_5d_group_norm(memory_format) -> None:
    video = torch.randn(2, 64, 5, 6, 7) * 3 + 1
    norm = _randomise(torch.nn.GroupNorm(8, 64, eps=1e-5))
    expected = F.silu(norm(video))
    frames = frames_to_batch(video).contiguous(memory_format=memory_format)
    out = group_norm_silu_over_frames(frames, 5, norm)
    assert out.is_contiguous(memory_format=memory_format)
    assert (batch_to_frames(out, 5) - expected).abs().max() < 1e-5


@pytest.mark.parametrize("memory_format", FORMATS)
def test_group_norm_over_frames_keeps_precision_when_the_mean_dwarfs_the_spread(memory_format) -> None:
    # The CPU's native channels-last kernel alone (variance as E[x^2] - E[x]^2) is off by more than 1 here.
    video = (torch.randn(2, 64, 16, 32, 32) * 0.1 + 30).double()
    norm = _randomise(torch.nn.GroupNorm(32, 64, eps=1e-5))
    expected = F.silu(norm.double()(video))
    frames = frames_to_batch(video.float()).contiguous(memory_format=memory_format)
    out = group_norm_silu_over_frames(frames, 16, norm.float())
    assert (batch_to_frames(out, 16).double() - expected).abs().max() < 1e-3


@pytest.mark.parametrize("memory_format", FORMATS)
def test_resnet_frames_path_matches_video_path(memory_format) -> None:
    block = _randomise(ResnetBlock3D(32, 64, temb_channels=16, groups=8))
    video, temb = torch.randn(2, 32, 4, 8, 8), torch.randn(2, 16)
    with torch.no_grad():
        expected = block(video, temb)
        block.to(memory_format=memory_format)
        out = block.forward_frames(frames_to_batch(video).contiguous(memory_format=memory_format), temb, 4)
    assert out.is_contiguous(memory_format=memory_format)
    assert (batch_to_frames(out, 4) - expected).abs().max() < 1e-4


@pytest.mark.parametrize("memory_format", FORMATS)
def test_motion_module_frames_path_keeps_layout(memory_format) -> None:
    module = MotionModule(32)
    video = torch.randn(2, 32, 6, 4, 5)
    with torch.no_grad():
        expected = module(video)
        out = module.forward_frames(frames_to_batch(video).contiguous(memory_format=memory_format), 6)
    assert out.is_contiguous(memory_format=memory_format)
    assert (batch_to_frames(out, 6) - expected).abs().max() < 1e-5


@pytest.mark.parametrize("memory_format", FORMATS)
def test_layout_helpers_keep_memory_format(memory_format) -> None:
    video = torch.randn(2, 8, 3, 4, 4)
    frames = torch.randn(6, 8, 4, 4).contiguous(memory_format=memory_format)
    summed = add_video(frames, video)
    assert summed.is_contiguous(memory_format=memory_format)
    assert torch.equal(batch_to_frames(summed, 3), batch_to_frames(frames, 3) + video)
    doubled = repeat_rows(frames, 2)
    assert doubled.is_contiguous(memory_format=memory_format)
    assert torch.equal(doubled, frames.repeat(2, 1, 1, 1))


def test_reference_reader_slices_equal_masked_rows() -> None:
    """Guidance batches `[uncond ; cond]` take the slicing path; any other row pattern the masked one."""
    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8)
    state = ReferenceState(bank=ReferenceBank(tokens=[torch.randn(1, 5, 16)]))
    reader = ReferenceReadProcessor(state, 0)
    hidden = torch.randn(6, 5, 16)
    with torch.no_grad():
        state.cond_rows = torch.tensor([False] * 3 + [True] * 3)
        sliced = reader(attn, hidden)
        order = torch.tensor([3, 0, 4, 1, 5, 2])  # the same rows interleaved: masked path
        state.cond_rows = torch.tensor([True, False] * 3)
        masked = reader(attn, hidden[order])
    assert (sliced[order] - masked).abs().max() < 1e-6


def test_speedups_defaults_per_device() -> None:
    cpu, cuda = Speedups.for_device("cpu"), Speedups.for_device("cuda")
    assert cpu.decode_batch_size == 1 and cuda.decode_batch_size == 8
    winograd_vae = {"vae"} if cpu.split_decode("cpu") else set()  # 1-2 CPU threads: contiguous for Winograd
    assert cpu.channels_last_models("cpu") == CPU_CHANNELS_LAST - winograd_vae
    assert cuda.channels_last_models("cuda") == frozenset(CHANNELS_LAST_MODELS)
    assert Speedups(channels_last=False).channels_last_models("cuda") == frozenset()
    assert Speedups(channels_last=True).channels_last_models("cpu") == frozenset(CHANNELS_LAST_MODELS)


def test_plain_processor_matches_diffusers_and_projects_broadcast_text_once() -> None:
    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8)
    hidden, text = torch.randn(6, 9, 16), torch.randn(1, 5, 12)
    with torch.no_grad():
        expected = attn(hidden, encoder_hidden_states=text.repeat(6, 1, 1))
        attn.set_processor(PlainAttnProcessor())
        calls = []
        attn.to_k.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
        out = attn(hidden, encoder_hidden_states=text.expand(6, -1, -1))
        self_attn = Attention(query_dim=16, heads=2, dim_head=8)
        self_expected = self_attn(hidden)
        self_attn.set_processor(PlainAttnProcessor())
        self_out = self_attn(hidden)
    assert calls[0] == 1, "a broadcast context is projected once"
    assert (out - expected).abs().max() < 1e-6
    assert (self_out - self_expected).abs().max() < 1e-6


@pytest.mark.parametrize("keys", [CPU_PAD_MIN_KEYS, 77])
def test_plain_processor_pads_narrow_heads_only_where_it_is_faster(keys: int, monkeypatch) -> None:
    """Heads narrower than 16 run at width 16 on CPU with many keys; the output is diffusers' own."""
    torch.manual_seed(0)
    attn = Attention(query_dim=32, cross_attention_dim=24, heads=4, dim_head=8)
    hidden, context = torch.randn(2, 40, 32), torch.randn(2, keys, 24)
    with torch.no_grad():
        expected = attn.double()(hidden.double(), encoder_hidden_states=context.double())
        attn.float().set_processor(PlainAttnProcessor())
        widths = []
        sdpa = F.scaled_dot_product_attention
        monkeypatch.setattr(
            reference_attention.F,
            "scaled_dot_product_attention",
            lambda q, *a, **k: widths.append(q.shape[-1]) or sdpa(q, *a, **k),
        )
        out = attn(hidden, encoder_hidden_states=context)
    assert widths == [CPU_PADDED_HEAD_DIM if keys >= CPU_PAD_MIN_KEYS else 8]
    assert (out.double() - expected).abs().max() < 1e-6
