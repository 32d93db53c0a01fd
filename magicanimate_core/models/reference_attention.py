"""Reference ("mutual self") attention between the appearance encoder and the 3D UNet.

The appearance encoder runs on the clean reference latent and *writes* the post-`norm1` hidden states of
its 10 mid/up transformer blocks into a `ReferenceBank`. In the 3D UNet the matching blocks *read* them:
for conditional rows, `attn1` takes queries from the frame's own tokens and keys/values from
`[own tokens ; reference tokens]`, both projected by the UNet's own `to_k`/`to_v`. Unconditional rows
keep plain self-attention. This is MagicAnimate's `ReferenceAttentionControl` with `fusion_blocks="midup"`,
written as diffusers attention processors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn


def reference_blocks(model: nn.Module) -> list[BasicTransformerBlock]:
    """The hooked blocks of `model` in the reference's pairing order.

    Transformer blocks of `mid_block` then `up_blocks`, depth first, stably sorted by descending width
    (the original's `torch_dfs` + sort on `norm1.normalized_shape`).
    """
    found = [
        module
        for root in (model.mid_block, model.up_blocks)
        for module in root.modules()
        if isinstance(module, BasicTransformerBlock)
    ]
    return sorted(found, key=lambda block: -block.norm1.normalized_shape[0])


class StopForward(Exception):
    """Raised by the last writer: nothing after the last hooked `norm1` is needed."""


@dataclass
class ReferenceBank:
    """Reference tokens for one denoising step, and their per-block key/value projections."""

    tokens: list[torch.Tensor | None] = field(default_factory=list)
    projections: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def key_value(self, index: int, attn: Attention) -> tuple[torch.Tensor, torch.Tensor]:
        """`to_k`/`to_v` of block `index`'s reference tokens, projected once per step."""
        if index not in self.projections:
            tokens = self.tokens[index]
            self.projections[index] = (attn.to_k(tokens), attn.to_v(tokens))
        return self.projections[index]


@dataclass
class ReferenceState:
    """What the readers need during one UNet call: the bank and which batch rows are conditional."""

    bank: ReferenceBank | None = None
    cond_rows: torch.Tensor | None = None  # bool mask over the `(b f)` rows of the UNet batch


# PyTorch's CPU flash-attention kernel runs 1.2-1.3x faster at head dim 16 than at head dims 4-12 once a
# few hundred keys are attended (bench/RESULTS.md). Zero-padding each head to 16 changes no score and no
# output value, only the order of rounding; with few keys (cross-attention, temporal) the padding costs more.
CPU_PADDED_HEAD_DIM = 16
CPU_PAD_MIN_KEYS = 256


def _kernel_head_dim(query: torch.Tensor, keys: int, head_dim: int) -> int:
    """The head width SDPA runs at: `head_dim`, or `CPU_PADDED_HEAD_DIM` where padding is faster."""
    if query.device.type == "cpu" and head_dim < CPU_PADDED_HEAD_DIM and keys >= CPU_PAD_MIN_KEYS:
        return CPU_PADDED_HEAD_DIM
    return head_dim


def _attention(attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled-dot-product attention followed by `to_out`, for `(rows, tokens, dim)` inputs."""
    rows, _, dim = query.shape
    head_dim = dim // attn.heads
    kernel_head_dim = _kernel_head_dim(query, key.shape[1], head_dim)

    def split(t: torch.Tensor) -> torch.Tensor:
        heads = t.reshape(t.shape[0], -1, attn.heads, head_dim)
        if kernel_head_dim != head_dim:
            heads = F.pad(heads, (0, kernel_head_dim - head_dim))
        return heads.transpose(1, 2)

    padded = {} if kernel_head_dim == head_dim else {"scale": head_dim**-0.5}  # SDPA's default scale is 1/sqrt(width)
    out = F.scaled_dot_product_attention(split(query), split(key), split(value), **padded)[..., :head_dim]
    out = out.transpose(1, 2).reshape(rows, -1, dim)
    return attn.to_out[1](attn.to_out[0](out))


def _split_point(cond_rows: torch.Tensor) -> int | None:
    """`k` when the first `k` rows are unconditional and the rest conditional, else None."""
    split = int((~cond_rows).sum())
    return split if bool(cond_rows[split:].all()) else None


class PlainAttnProcessor:
    """Self- or cross-attention as SDPA plus `to_out`, without diffusers' generic extras.

    For the UNet3D's own attentions, which use none of them (no mask, no norms, output rescale 1): this
    skips the per-call copy of dividing by 1. A context batch that is one row broadcast (stride 0, as the
    empty-prompt text repeated over frames) is projected by `to_k`/`to_v` once, not once per row.
    """

    @staticmethod
    def applies_to(attn: Attention) -> bool:
        return (
            attn.spatial_norm is None
            and attn.group_norm is None
            and not attn.norm_cross
            and attn.norm_q is None
            and not attn.residual_connection
            and attn.rescale_output_factor == 1.0
        )

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if attention_mask is not None:
            raise ValueError("the UNet3D's attention takes no mask")
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if context.shape[0] > 1 and context.stride(0) == 0:  # one row, broadcast
            rows = context.shape[0]
            key, value = attn.to_k(context[:1]).expand(rows, -1, -1), attn.to_v(context[:1]).expand(rows, -1, -1)
        else:
            key, value = attn.to_k(context), attn.to_v(context)
        return _attention(attn, attn.to_q(hidden_states), key, value)


def install_plain_processors(model: nn.Module) -> None:
    """`PlainAttnProcessor` on every attention of `model` it applies to (readers are installed later)."""
    for module in model.modules():
        if isinstance(module, Attention) and PlainAttnProcessor.applies_to(module):
            module.set_processor(PlainAttnProcessor())


class ReferenceWriteProcessor:
    """Appearance-encoder `attn1`: records its input (the post-`norm1` tokens), then attends normally."""

    def __init__(self, recorder: dict[int, torch.Tensor], index: int, stop_after: bool) -> None:
        self.recorder = recorder
        self.index = index
        self.stop_after = stop_after
        self.plain = AttnProcessor2_0()

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.recorder[self.index] = hidden_states
        if self.stop_after:
            raise StopForward
        return self.plain(attn, hidden_states, *args, **kwargs)


class ReferenceReadProcessor:
    """3D-UNet `attn1`: conditional rows attend to `[self ; reference]`, the others to themselves."""

    def __init__(self, state: ReferenceState, index: int) -> None:
        self.state = state
        self.index = index

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        bank, cond_rows = self.state.bank, self.state.cond_rows
        if bank is None or cond_rows is None or not bool(cond_rows.any()):
            return _attention(attn, query, key, value)
        ref_key, ref_value = bank.key_value(self.index, attn)
        if bool(cond_rows.all()):
            return self._with_reference(attn, query, key, value, ref_key, ref_value)
        split = _split_point(cond_rows)
        if split is not None:  # [plain rows ; conditional rows], as the pipeline batches them: slices, no gathers
            plain = _attention(attn, query[:split], key[:split], value[:split])
            cond = self._with_reference(attn, query[split:], key[split:], value[split:], ref_key, ref_value)
            return torch.cat([plain, cond])
        out = torch.empty_like(query)
        plain_rows = ~cond_rows
        out[plain_rows] = _attention(attn, query[plain_rows], key[plain_rows], value[plain_rows])
        out[cond_rows] = self._with_reference(
            attn, query[cond_rows], key[cond_rows], value[cond_rows], ref_key, ref_value
        )
        return out

    @staticmethod
    def _with_reference(
        attn: Attention,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        ref_key: torch.Tensor,
        ref_value: torch.Tensor,
    ) -> torch.Tensor:
        rows = query.shape[0]
        key = torch.cat([key, ref_key.expand(rows, -1, -1)], dim=1)
        value = torch.cat([value, ref_value.expand(rows, -1, -1)], dim=1)
        return _attention(attn, query, key, value)


def install_readers(model: nn.Module) -> ReferenceState:
    """Give `model`'s 10 mid/up `attn1` a reader processor; returns the state they share."""
    state = ReferenceState()
    for index, block in enumerate(reference_blocks(model)):
        block.attn1.set_processor(ReferenceReadProcessor(state, index))
    return state
