"""Precision names shared by the nodes, the CLI and the benchmark, and the `auto` rule."""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_CHOICES = ("auto", *DTYPES)


def resolve_dtype(name: str, device: torch.device | str) -> torch.dtype:
    """`auto` is fp16 on CUDA and fp32 elsewhere; any other name is looked up in `DTYPES`."""
    if name == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPE_CHOICES)}")
    return DTYPES[name]
