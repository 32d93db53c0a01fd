"""Every exact speed-up off: the original's way of computing, to measure what the speed-ups save.

Shared by `python -m bench --exact-off/--compare` and the tests that check the speed-ups keep the output.
The production types carry no switch for this: the uncached reference K/V enters through the
pipeline's `reference_bank` phase, replaced only inside `uncached_reference`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from diffusers.models.attention_processor import Attention

from magicanimate_core.models import ReferenceBank
from magicanimate_core.options import Speedups
from magicanimate_core.pipeline import MagicAnimatePipeline

# Both guidance halves through the whole UNet, one window per call, one frame per decode on all threads, NCHW.
EXACT_OFF = Speedups(
    share_down_path=False,
    windows_per_call=1,
    decode_batch_size=1,
    decode_threads=1,
    winograd_decode=False,
    channels_last=False,
)


class UncachedBank(ReferenceBank):
    """A bank that projects the reference tokens with `to_k`/`to_v` on every UNet call, as the original."""

    def key_value(self, index: int, attn: Attention) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokens[index]
        return attn.to_k(tokens), attn.to_v(tokens)


@contextlib.contextmanager
def uncached_reference(pipe: MagicAnimatePipeline) -> Iterator[MagicAnimatePipeline]:
    """Within the block, `pipe` re-projects the reference tokens on every UNet call."""
    cached = pipe.reference_bank
    pipe.reference_bank = lambda *args: UncachedBank(cached(*args).tokens)  # type: ignore[method-assign]
    try:
        yield pipe
    finally:
        del pipe.reference_bank
