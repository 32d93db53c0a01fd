"""The appearance encoder: an SD1.5 UNet2D trunk whose mid/up `norm1` states become reference tokens."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from torch import nn

from .reference_attention import ReferenceBank, ReferenceWriteProcessor, StopForward, reference_blocks

PRUNED_KEYS = frozenset(
    [
        "conv_norm_out.weight",
        "conv_norm_out.bias",
        "conv_out.weight",
        "conv_out.bias",
        "up_blocks.3.attentions.2.proj_out.weight",
        "up_blocks.3.attentions.2.proj_out.bias",
    ]
    + [
        f"up_blocks.3.attentions.2.transformer_blocks.0.{name}"
        for name in (
            "attn1.to_q.weight",
            "attn1.to_k.weight",
            "attn1.to_v.weight",
            "attn1.to_out.0.weight",
            "attn1.to_out.0.bias",
            "norm2.weight",
            "norm2.bias",
            "attn2.to_q.weight",
            "attn2.to_k.weight",
            "attn2.to_v.weight",
            "attn2.to_out.0.weight",
            "attn2.to_out.0.bias",
            "norm3.weight",
            "norm3.bias",
            "ff.net.0.proj.weight",
            "ff.net.0.proj.bias",
            "ff.net.2.weight",
            "ff.net.2.bias",
        )
    ]
)
"""Keys MagicAnimate's `AppearanceEncoderModel` does not save: its output head and the unused half of
the last transformer block (only that block's `norm1` output is ever used)."""


class AppearanceEncoder(nn.Module):
    """Runs the UNet2D trunk on the clean reference latent and returns the reference tokens.

    The forward stops right after the last hooked `norm1`: nothing later influences the result.
    """

    def __init__(self, unet: UNet2DConditionModel) -> None:
        super().__init__()
        self.unet = unet
        self._recorded: dict[int, torch.Tensor] = {}
        blocks = reference_blocks(unet)
        last_executed = [m for m in unet.up_blocks[-1].modules() if isinstance(m, BasicTransformerBlock)][-1]
        for index, block in enumerate(blocks):
            block.attn1.set_processor(ReferenceWriteProcessor(self._recorded, index, stop_after=block is last_executed))
        self.num_blocks = len(blocks)

    @torch.no_grad()
    def forward(
        self, reference_latent: torch.Tensor, timestep: torch.Tensor | int, text: torch.Tensor
    ) -> ReferenceBank:
        self._recorded.clear()
        try:
            self.unet(reference_latent, timestep, encoder_hidden_states=text)
        except StopForward:
            pass
        tokens = [self._recorded.get(index) for index in range(self.num_blocks)]
        self._recorded.clear()
        if any(t is None for t in tokens):
            raise RuntimeError("the appearance encoder did not reach every reference block")
        return ReferenceBank(tokens=tokens)
