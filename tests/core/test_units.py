"""Component goldens: each network piece against the original's outputs (fp32, max abs <= 1e-4)."""

from __future__ import annotations

import json

import pytest
import torch

from magicanimate_core.models import ReferenceBank
from magicanimate_core.models.motion_module import MotionModule
from magicanimate_core.models.resnet3d import ResnetBlock3D

UNIT_TOLERANCE = 1e-4


def unit_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("weights."): v for k, v in tensors.items() if k.startswith("weights.")}


@pytest.mark.parametrize("name, in_ch, out_ch", [("resnet3d_plain", 32, 32), ("resnet3d_shortcut", 64, 32)])
def test_resnet_normalises_jointly_over_frames(units, name: str, in_ch: int, out_ch: int) -> None:
    tensors = units(name)
    block = ResnetBlock3D(in_ch, out_ch, temb_channels=128, groups=4)
    block.load_state_dict(unit_weights(tensors))
    with torch.no_grad():
        out = block(tensors["input"], tensors["temb"])
    assert (out - tensors["output"]).abs().max() <= UNIT_TOLERANCE


def test_resnet_per_frame_norm_would_fail(units) -> None:
    """The unit discriminates: normalising each frame separately misses the golden by far."""
    tensors = units("resnet3d_plain")
    block = ResnetBlock3D(32, 32, temb_channels=128, groups=4)
    block.load_state_dict(unit_weights(tensors))
    x = tensors["input"]
    with torch.no_grad():
        per_frame = torch.stack([block(x[:, :, f : f + 1], tensors["temb"])[:, :, 0] for f in range(x.shape[2])], 2)
    assert (per_frame - tensors["output"]).abs().max() > 100 * UNIT_TOLERANCE


def test_motion_module(units) -> None:
    tensors = units("motion_module")
    module = MotionModule(32)
    module.load_state_dict(unit_weights(tensors))
    with torch.no_grad():
        out = module(tensors["input"])
    assert (out - tensors["output"]).abs().max() <= UNIT_TOLERANCE


def test_motion_module_positional_encoding_is_the_analytic_sinusoid(tiny_pipeline) -> None:
    state = tiny_pipeline.models.unet.state_dict()
    fresh = MotionModule(32).state_dict()
    key = "temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
    assert torch.allclose(state[f"up_blocks.3.motion_modules.0.{key}"], fresh[key], atol=1e-6)


def test_reference_attention(golden_pipeline, units) -> None:
    tensors = units("reference_attention")
    block = golden_pipeline.models.unet.up_blocks[3].attentions[0].transformer_blocks[0]
    state = golden_pipeline.reference_state
    text = tensors["text_embedding"].repeat(32, 1, 1)
    reader_index = block.attn1.processor.index
    tokens = [None] * 10
    tokens[reader_index] = tensors["bank"][1:2]  # cond bank row; row 0 (uncond) must have no effect
    try:
        state.bank = ReferenceBank(tokens=tokens)
        state.cond_rows = torch.arange(32) >= 16
        with torch.no_grad():
            out = block(tensors["hidden_states"], encoder_hidden_states=text)
        state.bank = None
        with torch.no_grad():
            plain = block(tensors["hidden_states"], encoder_hidden_states=text)
    finally:
        state.bank = state.cond_rows = None
    assert (out - tensors["output"]).abs().max() <= UNIT_TOLERANCE
    assert (plain - tensors["output_empty_bank"]).abs().max() <= UNIT_TOLERANCE
    assert torch.equal(out[:16], plain[:16]), "uncond rows must keep plain self-attention"


def test_appearance_encoder_bank(golden_pipeline, units, golden_dir) -> None:
    tensors = units("appearance_encoder_bank")
    bank = golden_pipeline.models.appearance_encoder(
        tensors["sample"][:1], tensors["timestep"], tensors["encoder_hidden_states"][1:2]
    )
    assert len(bank.tokens) == 10
    for i, tokens in enumerate(bank.tokens):
        assert (tokens - tensors[f"bank{i}"][1:2]).abs().max() <= UNIT_TOLERANCE, f"bank {i}"
    manifest = json.loads((golden_dir / "units" / "manifest.json").read_text())
    assert len(manifest["units"]["appearance_encoder_bank"]["tensors"]) >= 13


def test_controlnet_frame0(golden_pipeline, units) -> None:
    tensors = units("controlnet_frame0")
    with torch.no_grad():
        down, mid = golden_pipeline.models.controlnet(
            tensors["sample"],
            tensors["timestep"],
            encoder_hidden_states=tensors["encoder_hidden_states"],
            controlnet_cond=tensors["controlnet_cond"],
            conditioning_scale=1.0,
            return_dict=False,
        )
    for i, residual in enumerate(down):
        assert (residual - tensors[f"down{i}"]).abs().max() <= UNIT_TOLERANCE, f"down {i}"
    assert (mid - tensors["mid"]).abs().max() <= UNIT_TOLERANCE


def test_text_encoder_and_tokenizer(golden_pipeline, units) -> None:
    tensors = units("text_encoder")
    tokenizer = golden_pipeline.models.tokenizer
    ids = tokenizer("", padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    assert torch.equal(ids, tensors["input_ids"])
    assert (golden_pipeline.text_embedding() - tensors["output"]).abs().max() <= 1e-5


def test_vae_encode(golden_pipeline, units) -> None:
    tensors = units("vae_encode")
    latent = golden_pipeline.encode_reference(tensors["image"].float() / 255)
    assert (latent - tensors["latent"]).abs().max() <= 1e-5
