"""Load MagicAnimate from a folder laid out like the original `pretrained_models/` download.

```
<model_dir>/MagicAnimate/appearance_encoder/{config.json, diffusion_pytorch_model.safetensors}
<model_dir>/MagicAnimate/densepose_controlnet/{config.json, diffusion_pytorch_model.safetensors}
<model_dir>/MagicAnimate/temporal_attention/temporal_attention.ckpt   (or the converted .safetensors)
<model_dir>/stable-diffusion-v1-5/{unet, text_encoder, tokenizer}/
<model_dir>/sd-vae-ft-mse/{config.json, diffusion_pytorch_model.safetensors}
```

Weights are read with safetensors, or `torch.load(weights_only=True)` for `.bin`/`.ckpt`: no pickled code
ever runs. Every state dict is accounted for key by key: a key the reference would not leave missing, or
one the model does not have, is an error naming the file and the first offending keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from packaging.version import Version
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from .models import PRUNED_KEYS, AppearanceEncoder, UNet3DConditionModel
from .temporal_weights import check_overlay_base, read_converted_temporal, read_temporal_ckpt
from .weights_io import FIX, StateDict, WeightsFileError, load_failure_cause, read_config, read_state_dict

logger = logging.getLogger("magicanimate")

APPEARANCE_DIR = Path("MagicAnimate/appearance_encoder")
CONTROLNET_DIR = Path("MagicAnimate/densepose_controlnet")
TEMPORAL_DIR = Path("MagicAnimate/temporal_attention")
TEMPORAL_CKPT = "temporal_attention.ckpt"
TEMPORAL_SAFETENSORS = "temporal_attention.safetensors"
SD15_DIR = Path("stable-diffusion-v1-5")
WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)
VAE_DIR = Path("sd-vae-ft-mse")
# diffusers >= 0.33 memory-maps safetensors weights; once the memory-format switch copies the convolution
# weights, the file pages they were read from stay resident beside the copies (about the VAE's and the
# ControlNet's whole files). Reading the file into memory instead keeps one copy of every weight.
DIFFUSERS_READ_WHOLE_FILE = {"disable_mmap": True} if Version(diffusers.__version__) >= Version("0.33") else {}


class MissingModelFilesError(FileNotFoundError):
    """Some files of the model folder are absent; the message lists each one with its expected place."""


class CheckpointKeyError(ValueError):
    """A checkpoint's keys do not match the model (missing or unexpected keys)."""


@dataclass
class MagicAnimateModels:
    """Every network MagicAnimate needs, loaded and in eval mode."""

    unet: UNet3DConditionModel
    appearance_encoder: AppearanceEncoder
    controlnet: ControlNetModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: Callable[..., Any]

    def modules(self) -> Iterable[nn.Module]:
        return (self.unet, self.appearance_encoder, self.controlnet, self.vae, self.text_encoder)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> MagicAnimateModels:
        for module in self.modules():
            # dtype only when given: diffusers warns on every `to(dtype=...)` call, even `dtype=None`
            module.to(**{key: value for key, value in (("device", device), ("dtype", dtype)) if value is not None})
        return self


def load_strict(
    model: nn.Module, state_dict: StateDict, source: Path | str, allowed_missing: Iterable[str] = ()
) -> None:
    """Load `state_dict`; any unexpected key, or missing key outside `allowed_missing`, is an error."""
    result = model.load_state_dict(state_dict, strict=False)
    missing = sorted(set(result.missing_keys) - set(allowed_missing))
    unexpected = sorted(result.unexpected_keys)
    if missing or unexpected:
        raise CheckpointKeyError(
            f"{source} does not match {type(model).__name__}: {len(missing)} missing keys "
            f"(first: {missing[:5]}), {len(unexpected)} unexpected keys (first: {unexpected[:5]}). "
            "Is this the right file for this slot?"
        )


def first_existing(folder: Path, names: Iterable[str]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def check_layout(model_dir: Path, *, need_sd15: bool = True, need_vae: bool = True) -> None:
    """Raise `MissingModelFilesError` listing every expected file that is absent."""
    expected: list[tuple[Path, tuple[str, ...]]] = [
        (APPEARANCE_DIR, ("config.json",)),
        (APPEARANCE_DIR, ("diffusion_pytorch_model.safetensors",)),
        (CONTROLNET_DIR, ("config.json",)),
        (CONTROLNET_DIR, ("diffusion_pytorch_model.safetensors",)),
        (TEMPORAL_DIR, (TEMPORAL_SAFETENSORS, TEMPORAL_CKPT)),
    ]
    if need_sd15:
        expected += [
            (SD15_DIR / "unet", ("config.json",)),
            (SD15_DIR / "unet", ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
            (SD15_DIR / "text_encoder", ("config.json",)),
            (SD15_DIR / "text_encoder", ("model.safetensors", "pytorch_model.bin")),
            (SD15_DIR / "tokenizer", ("vocab.json",)),
            (SD15_DIR / "tokenizer", ("merges.txt",)),
        ]
    if need_vae:
        expected += [
            (VAE_DIR, ("config.json",)),
            (VAE_DIR, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
        ]
    absent = [
        str(
            model_dir / folder / " or ".join(names)
            if len(names) == 1
            else model_dir / folder / f"{{{','.join(names)}}}"
        )
        for folder, names in expected
        if first_existing(model_dir / folder, names) is None
    ]
    if absent:
        raise MissingModelFilesError(
            f"the MagicAnimate model folder {model_dir} is incomplete; missing:\n  "
            + "\n  ".join(absent)
            + "\nPut the files there (layout: docs/models.md) or fetch them with "
            "`python -m magicanimate_core download`."
        )


def read_temporal_weights(temporal_dir: Path, sd15_unet: StateDict) -> tuple[StateDict, Path]:
    """The motion checkpoint: the converted overlay when it was made against this SD1.5 UNet, else the ckpt."""
    converted, ckpt = temporal_dir / TEMPORAL_SAFETENSORS, temporal_dir / TEMPORAL_CKPT
    if converted.is_file():
        try:
            check_overlay_base(converted, sd15_unet)
            return read_converted_temporal(converted), converted
        except ValueError as mismatch:
            if not ckpt.is_file():
                raise
            logger.warning("%s; loading %s instead", mismatch, ckpt)
    return read_temporal_ckpt(ckpt), ckpt


def load_unet(
    unet_config: dict[str, Any], sd15_unet: StateDict, sd15_source: Path | str, temporal_dir: Path
) -> UNet3DConditionModel:
    """Build the 3D UNet, load SD1.5's spatial weights, then the temporal checkpoint over them.

    As in the reference loader, every key of the temporal checkpoint is loaded (a full UNet3D state dict
    replaces the spatial weights too); keys prefixed `unet.` fall back to their motion-module keys.
    """
    unet = UNet3DConditionModel(unet_config)
    motion_keys = {key for key in unet.state_dict() if "motion_modules." in key}
    load_strict(unet, sd15_unet, sd15_source, allowed_missing=motion_keys)

    temporal, temporal_path = read_temporal_weights(temporal_dir, sd15_unet)
    if not set(temporal) <= set(unet.state_dict()):
        temporal = {key.removeprefix("unet."): value for key, value in temporal.items() if "motion_modules" in key}
    missing_motion = sorted(motion_keys - set(temporal))
    if missing_motion:
        raise CheckpointKeyError(
            f"{temporal_path} lacks {len(missing_motion)} motion-module weights (first: {missing_motion[:5]}); "
            "it is not a MagicAnimate temporal_attention checkpoint"
        )
    load_strict(unet, temporal, temporal_path, allowed_missing=unet.state_dict().keys() - temporal.keys())
    return unet


def load_appearance_encoder(folder: Path) -> AppearanceEncoder:
    config = read_config(folder / "config.json")
    unet = UNet2DConditionModel.from_config(config)
    weights = folder / "diffusion_pytorch_model.safetensors"
    load_strict(unet, read_state_dict(weights), weights, allowed_missing=PRUNED_KEYS)
    return AppearanceEncoder(unet)


def load_diffusers_folder(
    model_class: type, folder: Path, dtype: torch.dtype, allowed_unexpected: Iterable[str] = ()
) -> Any:
    """`from_pretrained` on a local folder with strict accounting of the loading report."""
    extra = {} if model_class is CLIPTextModel else {"low_cpu_mem_usage": False, **DIFFUSERS_READ_WHOLE_FILE}
    read_config(folder / "config.json")
    try:
        model, info = model_class.from_pretrained(
            folder, output_loading_info=True, local_files_only=True, torch_dtype=dtype, **extra
        )
    except Exception as error:  # noqa: BLE001 - the config was valid, so the weights file is unusable
        weights = first_existing(folder, WEIGHT_NAMES) or folder
        raise WeightsFileError(f"cannot read weights from {weights}: {load_failure_cause(error)}. {FIX}.") from None
    unexpected = [key for key in info.get("unexpected_keys", []) if key not in set(allowed_unexpected)]
    problems = list(info.get("missing_keys", [])) + unexpected + list(info.get("mismatched_keys", []))
    if problems:
        raise CheckpointKeyError(f"{folder} does not match {model_class.__name__}: {problems[:5]}")
    return model


def load_tokenizer(folder: Path) -> CLIPTokenizer:
    try:
        return CLIPTokenizer.from_pretrained(folder)
    except Exception as error:  # noqa: BLE001 - vocab.json or merges.txt is unusable
        raise WeightsFileError(
            f"cannot read the tokenizer in {folder} (vocab.json, merges.txt): {load_failure_cause(error)}. {FIX}."
        ) from None


def load_models(
    model_dir: str | Path,
    *,
    sd15_checkpoint: str | Path | None = None,
    vae_path: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
) -> MagicAnimateModels:
    """Load every MagicAnimate network (on the CPU, in `dtype`, eval mode) from `model_dir`.

    `sd15_checkpoint` / `vae_path` reuse a single-file SD1.5 checkpoint / VAE instead of the diffusers
    folders `stable-diffusion-v1-5/` / `sd-vae-ft-mse/`.
    """
    model_dir = Path(model_dir)
    check_layout(model_dir, need_sd15=sd15_checkpoint is None, need_vae=vae_path is None)

    if sd15_checkpoint is None:
        unet_dir = model_dir / SD15_DIR / "unet"
        unet_config = read_config(unet_dir / "config.json")
        unet_weights = first_existing(unet_dir, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"))
        sd15_unet: StateDict = read_state_dict(unet_weights)
        sd15_source: Path | str = unet_weights
        text_encoder = load_diffusers_folder(
            CLIPTextModel,
            model_dir / SD15_DIR / "text_encoder",
            dtype,
            allowed_unexpected=["text_model.embeddings.position_ids"],
        )
        tokenizer: Callable[..., Any] = load_tokenizer(model_dir / SD15_DIR / "tokenizer")
    else:
        from .single_file import load_sd15_single_file

        parts = load_sd15_single_file(Path(sd15_checkpoint), dtype)
        unet_config, sd15_unet, sd15_source = parts.unet_config, parts.unet_state_dict, Path(sd15_checkpoint)
        text_encoder, tokenizer = parts.text_encoder, parts.tokenizer

    if vae_path is None:
        vae = load_diffusers_folder(AutoencoderKL, model_dir / VAE_DIR, dtype)
    else:
        from .single_file import load_vae_single_file

        vae = load_vae_single_file(Path(vae_path), dtype)

    models = MagicAnimateModels(
        unet=load_unet(unet_config, sd15_unet, sd15_source, model_dir / TEMPORAL_DIR),
        appearance_encoder=load_appearance_encoder(model_dir / APPEARANCE_DIR),
        controlnet=load_diffusers_folder(ControlNetModel, model_dir / CONTROLNET_DIR, dtype),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )
    models.unet.to(dtype)
    models.appearance_encoder.to(dtype)
    for module in models.modules():
        module.eval().requires_grad_(False)
    return models
