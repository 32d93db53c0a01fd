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


def parse_devices(text: str) -> list[torch.device]:
    """`"cuda:0,cuda:1"` -> those devices; `""` -> none. Each must exist: ValueError naming the one that does not."""
    devices = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise ValueError(f"devices: {name!r} is not a device name ({error}); write e.g. cuda:0,cuda:1") from None
        if device.type == "cuda":
            count = torch.cuda.device_count()
            index = 0 if device.index is None else device.index
            if index >= count:
                raise ValueError(f"devices: {name} does not exist; torch sees {count} CUDA device(s) (cuda:0..)")
            device = torch.device("cuda", index)
        elif device.type != "cpu":
            raise ValueError(f"devices: {name} is not supported; list cuda:N devices (or cpu, for testing)")
        devices.append(device)
    return devices
