"""AnimateDiff-v1 ("Vanilla") motion module, with MagicAnimate's checkpoint key names."""

from __future__ import annotations

import math

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import nn

from .frames import batch_to_frames, frames_to_batch

MAX_FRAMES = 24
"""Length of the motion module's positional encoding: the largest context window it can see."""


def sinusoidal_positions(max_len: int, dim: int) -> torch.Tensor:
    """The fixed `(1, max_len, dim)` encoding: sin on even channels, cos on odd, base 10000."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_len, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal frame-position encoding; its buffer `pe` is part of the checkpoint."""

    def __init__(self, dim: int, max_len: int = MAX_FRAMES) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(max_len, dim))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        num_frames = hidden_states.shape[1]
        if num_frames > self.pe.shape[1]:
            raise ValueError(
                f"a context window of {num_frames} frames exceeds the motion module's limit of "
                f"{self.pe.shape[1]} frames; use context_frames <= {self.pe.shape[1]}"
            )
        return hidden_states + self.pe[:, :num_frames].to(hidden_states.dtype)


class TemporalSelfAttention(Attention):
    """Self-attention across frames (`(b h w), f, c` tokens); the position encoding is added first."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False, out_bias=True)
        self.pos_encoder = PositionalEncoding(dim)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # type: ignore[override]
        return super().forward(self.pos_encoder(hidden_states))


class TemporalTransformerBlock(nn.Module):
    """Two temporal self-attentions, then a GEGLU feed-forward; pre-LayerNorm and residuals."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList([TemporalSelfAttention(dim, heads) for _ in range(2)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(2)])
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        for norm, attention in zip(self.norms, self.attention_blocks):
            tokens = attention(norm(tokens)) + tokens
        return self.ff(self.ff_norm(tokens)) + tokens


class TemporalTransformer3D(nn.Module):
    """Per-frame GroupNorm -> proj_in -> temporal block over frames -> proj_out -> residual."""

    def __init__(self, channels: int, heads: int = 8, norm_groups: int = 32) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, heads)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """`(b, c, f, h, w)` -> the same shape."""
        num_frames = video.shape[2]
        return batch_to_frames(self.forward_frames(frames_to_batch(video), num_frames), num_frames)

    def forward_frames(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        """The same on `((b f), c, h, w)` frames; one layout copy in (to tokens), one fused with the residual out."""
        bf, c, h, w = frames.shape
        b = bf // num_frames
        normed = self.norm(frames)  # per frame: statistics over (C/G, H, W)
        # ((b f), c, h, w) -> (b, h, w, f, c) -> ((b h w), f, c): a view until the final reshape (one copy)
        tokens = normed.permute(0, 2, 3, 1).unflatten(0, (b, num_frames)).permute(0, 2, 3, 1, 4)
        tokens = self.proj_in(tokens.reshape(b * h * w, num_frames, c))
        for block in self.transformer_blocks:
            tokens = block(tokens)
        tokens = self.proj_out(tokens)
        # ((b h w), f, c) viewed as (b, f, c, h, w): the residual add writes it in `frames`' memory format
        out = frames.unflatten(0, (b, num_frames)) + tokens.view(b, h, w, num_frames, c).permute(0, 3, 4, 1, 2)
        return out.flatten(0, 1)


class MotionModule(nn.Module):
    """`VanillaTemporalModule`: the wrapper that gives checkpoint keys their `temporal_transformer.` prefix."""

    def __init__(self, channels: int, heads: int = 8) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer3D(channels, heads)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.temporal_transformer(video)

    def forward_frames(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.temporal_transformer.forward_frames(frames, num_frames)
