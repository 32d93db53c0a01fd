"""The pack's only door to ComfyUI (folder_paths, comfy.utils, comfy.model_management, comfy.cli_args).

Every ComfyUI module is imported when first needed, so the node classes import and run in tests without
ComfyUI: lists are then empty, progress and interrupts are no-ops, devices come from torch, and anything
that needs ComfyUI's folders raises a RuntimeError saying so.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch


class Progress(Protocol):
    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None: ...


class _NoProgress:
    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        pass


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _folder_paths() -> ModuleType:
    module = _optional("folder_paths")
    if module is None:
        raise RuntimeError("ComfyUI's folder_paths is not importable: this node must run inside ComfyUI")
    return module


def _args() -> Any:
    cli_args = _optional("comfy.cli_args")
    return getattr(cli_args, "args", None)


# --- folders ---------------------------------------------------------------------------------------------


def input_directory() -> Path:
    return Path(os.path.realpath(_folder_paths().get_input_directory()))


def output_directory() -> Path:
    return Path(os.path.realpath(_folder_paths().get_output_directory()))


def temp_directory() -> Path:
    return Path(os.path.realpath(_folder_paths().get_temp_directory()))


def input_files(suffixes: frozenset[str]) -> list[str]:
    """Sorted names of the top-level files in ComfyUI's input folder with one of `suffixes` (lowercase)."""
    if _optional("folder_paths") is None:
        return []
    folder = input_directory()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def register_model_folder(name: str, extensions: frozenset[str] | None = None) -> None:
    """Make `models/<name>` a model folder unless it (or a user path for it) is already registered.

    Its file lists show only `extensions` (ComfyUI's weight suffixes when None), so checksums, partial
    downloads and configs never appear in them.
    """
    folder_paths = _optional("folder_paths")
    if folder_paths is None:
        return
    default = os.path.join(folder_paths.models_dir, name)
    registered = folder_paths.folder_names_and_paths.get(name)
    if registered is None or default not in registered[0]:
        folder_paths.add_model_folder_path(name, default)
    suffixes = extensions if extensions is not None else getattr(folder_paths, "supported_pt_extensions", set())
    folder_paths.folder_names_and_paths[name][1].update(suffixes)


def model_folders(name: str) -> list[Path]:
    """The registered directories of model folder `name` (empty without ComfyUI)."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None or name not in folder_paths.folder_names_and_paths:
        return []
    return [Path(p) for p in folder_paths.get_folder_paths(name)]


def model_files(name: str) -> list[str]:
    """ComfyUI's file list for model folder `name` (empty without ComfyUI)."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None or name not in folder_paths.folder_names_and_paths:
        return []
    return list(folder_paths.get_filename_list(name))


def model_file(name: str, filename: str) -> Path:
    """The full path of `filename` in model folder `name`; FileNotFoundError naming both otherwise."""
    path = _folder_paths().get_full_path(name, filename)
    if path is None:
        raise FileNotFoundError(f"'{filename}' is not in the models/{name} folder; put the file there and refresh")
    return Path(path)


def save_path(prefix: str, width: int, height: int) -> tuple[Path, str, int, str]:
    """(folder, file stem, first free counter, subfolder) for `prefix`, by ComfyUI's rules.

    ComfyUI refuses prefixes that leave the output folder and creates missing subfolders.
    """
    folder, stem, counter, subfolder, _ = _folder_paths().get_save_image_path(
        prefix, str(output_directory()), width, height
    )
    return Path(folder), stem, counter, subfolder


# --- execution -------------------------------------------------------------------------------------------


def progress_bar(total: int) -> Progress:
    utils = _optional("comfy.utils")
    return utils.ProgressBar(total) if utils is not None else _NoProgress()


def throw_if_interrupted() -> None:
    """Raise ComfyUI's InterruptProcessingException when the user pressed Cancel."""
    management = _model_management()
    if management is not None:
        management.throw_exception_if_processing_interrupted()


def _model_management() -> ModuleType | None:
    if _optional("folder_paths") is None:  # comfy.model_management only initialises inside ComfyUI
        return None
    return _optional("comfy.model_management")


def torch_device() -> torch.device:
    management = _model_management()
    if management is not None:
        return management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    management = _model_management()
    return management.unet_offload_device() if management is not None else torch.device("cpu")


def intermediate_device() -> torch.device:
    management = _model_management()
    return management.intermediate_device() if management is not None else torch.device("cpu")


def soft_empty_cache() -> None:
    management = _model_management()
    if management is not None:
        management.soft_empty_cache()


# --- models in ComfyUI's memory manager ------------------------------------------------------------------


class _Networks(torch.nn.Module):
    """One module holding a pipeline's networks, the form ComfyUI's ModelPatcher moves and measures."""

    def __init__(self, networks: list[torch.nn.Module], dtype: torch.dtype) -> None:
        super().__init__()
        self.networks = torch.nn.ModuleList(networks)
        self.dtype = dtype

    def get_dtype(self) -> torch.dtype:
        return self.dtype


def _patcher(model: Any) -> Any | None:
    """The ModelPatcher through which ComfyUI loads and evicts `model` (a pipeline with `.models.modules()`).

    None outside ComfyUI, and on ComfyUIs whose `load_models_gpu` cannot force a full load (plain torch
    modules cannot be loaded partially); the caller then moves the model itself.
    """
    management, patching = _model_management(), _optional("comfy.model_patcher")
    if management is None or patching is None or not hasattr(model, "models"):
        return None
    if "force_full_load" not in inspect.signature(management.load_models_gpu).parameters:
        return None
    if getattr(model, "comfy_patcher", None) is None:
        networks = _Networks(list(model.models.modules()), model.dtype)
        model.comfy_patcher = patching.ModelPatcher(
            networks, load_device=management.get_torch_device(), offload_device=management.unet_offload_device()
        )
    return model.comfy_patcher


def free_memory(required: int, device: torch.device, keep: Any = None) -> int | None:
    """Let ComfyUI unload other models (never `keep`'s) until `required` bytes are free on a GPU `device`.

    Returns the free bytes afterwards, or None where memory is not checked (the CPU).
    """
    if device.type == "cpu":
        return None
    management = _model_management()
    if management is None:
        return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    patcher = _patcher(keep) if keep is not None else None
    management.free_memory(required, device, keep_loaded=[] if patcher is None else [management.LoadedModel(patcher)])
    return int(management.get_free_memory(device))


def load_model(model: Any, memory_required: int) -> None:
    """Put `model` on the torch device, through ComfyUI's `load_models_gpu` when possible.

    There ComfyUI frees other models for it (`memory_required` = bytes the run needs beside the weights)
    and may evict it later for others, like its own models.
    """
    patcher = _patcher(model)
    if patcher is not None:
        _model_management().load_models_gpu([patcher], memory_required=memory_required, force_full_load=True)
    model.to(torch_device())


def release_model(model: Any, keep_loaded: bool) -> None:
    """After a run: unload `model` to the offload device unless `keep_loaded` and ComfyUI manages it."""
    patcher = getattr(model, "comfy_patcher", None)
    if patcher is None:  # outside ComfyUI's manager nothing could evict it later: never stay on the device
        model.to(offload_device())
    elif not keep_loaded:
        loaded = _model_management().current_loaded_models
        for index, entry in enumerate(loaded):
            if entry.model is patcher:
                entry.model_unload()
                loaded.pop(index)
                break
    soft_empty_cache()


# --- command-line flags ----------------------------------------------------------------------------------


def metadata_enabled() -> bool:
    """False when ComfyUI runs with --disable-metadata."""
    return not getattr(_args(), "disable_metadata", False)


def latent_previewer() -> Any | None:
    """ComfyUI's previewer for SD1.5 latents (latent2rgb or TAESD, as `--preview-method` says), or None."""
    if preview_size() is None or _model_management() is None:
        return None
    previews, formats = _optional("latent_preview"), _optional("comfy.latent_formats")
    if previews is None or formats is None:
        return None
    return previews.get_previewer(torch_device(), formats.SD15())


def preview_size() -> int | None:
    """Largest preview side in pixels, or None when ComfyUI runs with the (default) `--preview-method none`."""
    args = _args()
    method = getattr(args, "preview_method", None)
    if method is None or str(getattr(method, "value", method)) == "none":
        return None
    return int(getattr(args, "preview_size", 512))
