"""Model-call counters: forward pre-hooks on the networks, read out after every denoising step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from magicanimate_core.loading import MagicAnimateModels

# What one call is worth in "rows": UNet frame-rows, ControlNet frames, appearance-encoder images, VAE frames.
RowCount = Callable[[tuple[Any, ...], dict[str, Any]], int]


def _unet_rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    sample = args[0]
    return sample.shape[0] * sample.shape[2] * kwargs.get("cfg_copies", 1)


def _batch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    sample = args[0] if args else next(iter(kwargs.values()))
    return sample.shape[0] if isinstance(sample, torch.Tensor) else 1


class CallCounter:
    """Counts calls and rows of the UNet, ControlNet, appearance encoder, VAE decoder/encoder and CLIP."""

    def __init__(self, models: MagicAnimateModels) -> None:
        self.calls: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.steps: list[dict[str, int]] = []
        self._last: Counter[str] = Counter()
        watched: dict[str, tuple[nn.Module, RowCount]] = {
            "unet": (models.unet, _unet_rows),
            "controlnet": (models.controlnet, _batch),
            "appearance": (models.appearance_encoder, _batch),
            "vae": (models.vae.decoder, _batch),
            "vae_encode": (models.vae.encoder, _batch),
            "text": (models.text_encoder, _batch),
        }
        self._handles = [
            module.register_forward_pre_hook(self._hook(name, rows), with_kwargs=True)
            for name, (module, rows) in watched.items()
        ]

    def _hook(self, name: str, rows: RowCount) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        def count(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            self.calls[name] += 1
            self.rows[name] += rows(args, kwargs)

        return count

    def reset(self) -> None:
        """Forget everything counted so far (the hooks stay: adding hooks would recompile a compiled UNet)."""
        self.calls.clear()
        self.rows.clear()
        self.steps.clear()
        self._last.clear()

    def end_step(self) -> None:
        """Record the calls and rows since the previous step's end."""
        now = {f"{name}_calls": n for name, n in self.calls.items()} | {f"{k}_rows": n for k, n in self.rows.items()}
        self.steps.append({key: value - self._last[key] for key, value in now.items()})
        self._last = Counter(now)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
