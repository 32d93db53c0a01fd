"""One-time conversion of `temporal_attention.ckpt` (5 GB pickle) to `temporal_attention.safetensors`.

The ckpt is a full UNet3D state dict: SD1.5 spatial keys plus 560 motion-module keys, read here only with
`torch.load(weights_only=True)`. The converted file is an overlay to load over the SD1.5 UNet weights:
every motion-module tensor, plus the spatial tensors that differ from the SD1.5 UNet used at conversion.
Loading SD1.5 + overlay therefore equals loading SD1.5 + ckpt, as long as the same SD1.5 UNet is used; the
overlay's metadata holds a fingerprint of the omitted SD1.5 tensors so a loader can check that
(`check_overlay_base`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .weights_io import StateDict, read_state_dict

FORMAT = "magicanimate-temporal-overlay"
FORMAT_VERSION = "1"
MOTION_MARKER = "motion_modules."
FINGERPRINT_SAMPLES = 4096


def read_temporal_ckpt(ckpt_path: Path) -> StateDict:
    """The ckpt's tensors as the reference loader sees them: `module.` stripped, and for keys prefixed
    `unet.` (the reference's fallback branch) only the motion-module tensors."""
    state = {key.removeprefix("module."): value for key, value in read_state_dict(ckpt_path).items()}
    if any(key.startswith("unet.") for key in state):
        state = {key.removeprefix("unet."): value for key, value in state.items() if MOTION_MARKER in key}
    return state


def base_fingerprint(state_dict: Mapping[str, torch.Tensor], keys: list[str]) -> str:
    """sha256 over names, shapes, dtypes and an evenly strided sample of each tensor (cheap, not a security hash)."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        tensor = state_dict[key].detach().reshape(-1)
        step = max(1, tensor.numel() // FINGERPRINT_SAMPLES)
        sample = tensor[::step].to(torch.float32).contiguous()
        digest.update(f"{key}|{tuple(state_dict[key].shape)}|{state_dict[key].dtype}|".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()


def convert_temporal_ckpt(
    ckpt_path: str | Path, sd15_unet_state_dict: Mapping[str, torch.Tensor], out_path: str | Path | None = None
) -> Path:
    """Write the overlay safetensors (default: `temporal_attention.safetensors` beside the ckpt); atomic."""
    ckpt_path = Path(ckpt_path)
    out_path = Path(out_path) if out_path is not None else ckpt_path.with_suffix(".safetensors")
    state = read_temporal_ckpt(ckpt_path)
    motion = [key for key in state if MOTION_MARKER in key]
    if not motion:
        raise ValueError(f"{ckpt_path} has no motion-module keys; it is not a MagicAnimate temporal_attention.ckpt")
    spatial = [key for key in state if MOTION_MARKER not in key]
    unknown = [key for key in spatial if key not in sd15_unet_state_dict]
    if unknown:
        raise ValueError(
            f"{ckpt_path} has {len(unknown)} spatial keys that the SD1.5 UNet lacks (first: {unknown[:5]}); "
            "pass the diffusers-named SD1.5 UNet state dict"
        )
    same = [
        key
        for key in spatial
        if state[key].shape == sd15_unet_state_dict[key].shape
        and torch.equal(state[key], sd15_unet_state_dict[key].to(state[key].dtype))
    ]
    same_set = set(same)
    overlay = {key: state[key].contiguous() for key in state if key not in same_set}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": ckpt_path.name,
        "source_bytes": str(ckpt_path.stat().st_size),
        "motion_keys": str(len(motion)),
        "spatial_keys": str(len(spatial)),
        "spatial_keys_kept": str(len(spatial) - len(same)),
        "omitted_base_fingerprint": base_fingerprint(sd15_unet_state_dict, same),
        "omitted_keys": ",".join(sorted(same)),
    }
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        save_file(overlay, str(tmp), metadata=metadata)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def read_converted_temporal(path: str | Path) -> StateDict:
    """The overlay tensors (motion modules + spatial tensors that differ from SD1.5)."""
    path = Path(path)
    if _metadata(path).get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a converted temporal overlay (run `python -m magicanimate_core convert-temporal`)"
        )
    return load_file(str(path))


def check_overlay_base(path: str | Path, sd15_unet_state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise if `sd15_unet_state_dict` is not the SD1.5 UNet the overlay was made against.

    With another base (say a fine-tuned single-file checkpoint) the overlay would keep that base's tensors
    where the ckpt would have replaced them; load the original ckpt in that case.
    """
    meta = _metadata(Path(path))
    omitted = [key for key in meta.get("omitted_keys", "").split(",") if key]
    missing = [key for key in omitted if key not in sd15_unet_state_dict]
    if missing or base_fingerprint(sd15_unet_state_dict, omitted) != meta.get("omitted_base_fingerprint"):
        raise ValueError(
            f"{path} was converted against a different SD1.5 UNet than the one being loaded, so it would not "
            "reproduce temporal_attention.ckpt; load the .ckpt instead, or convert again with this SD1.5 UNet"
        )


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}
