"""A stand-in for the few ComfyUI modules the node adapter uses, rooted in a temporary folder."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image


@dataclass
class FakeComfy:
    """Folders `input/ output/ temp/ models/` under `root`, plus knobs and records for the tests."""

    root: Path
    disable_metadata: bool = False
    preview_method: str = "none"
    interrupted: bool = False
    progress: list[tuple] = field(default_factory=list)
    previewed: list[torch.Tensor] = field(default_factory=list)  # latents given to the latent previewer

    def dir(self, name: str) -> Path:
        return self.root / name


class Interrupted(Exception):
    """Plays ComfyUI's InterruptProcessingException."""


def _save_image_path(prefix: str, output_dir: str, width: int = 0, height: int = 0):
    """ComfyUI's get_save_image_path rules: subfolders allowed, nothing outside output/, next free counter."""
    prefix = prefix.replace("%width%", str(width)).replace("%height%", str(height))
    subfolder, stem = os.path.dirname(os.path.normpath(prefix)), os.path.basename(os.path.normpath(prefix))
    folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(folder))) != output_dir:
        raise Exception("Saving image outside the output folder is not allowed.")
    os.makedirs(folder, exist_ok=True)
    counters = [
        int(name[len(stem) + 1 :].split("_")[0])
        for name in os.listdir(folder)
        if name.startswith(stem + "_") and name[len(stem) + 1 :].split("_")[0].isdigit()
    ]
    return folder, stem, max(counters, default=0) + 1, subfolder, prefix


def install(monkeypatch: pytest.MonkeyPatch, root: Path) -> FakeComfy:
    fake = FakeComfy(root)
    for name in ("input", "output", "temp", "models"):
        fake.dir(name).mkdir(parents=True, exist_ok=True)
    models = str(fake.dir("models"))
    paths: dict[str, tuple[list[str], set[str]]] = {
        name: ([os.path.join(models, name)], set()) for name in ("checkpoints", "vae")
    }

    def add_model_folder_path(name: str, path: str) -> None:
        paths.setdefault(name, ([], set()))[0].append(path)

    def get_filename_list(name: str) -> list[str]:
        folders, extensions = paths[name]
        return sorted(
            str(p.relative_to(d))
            for d in map(Path, folders)
            if d.is_dir()
            for p in d.rglob("*")
            if p.is_file() and (not extensions or p.suffix.lower() in extensions)
        )

    def get_full_path(name: str, filename: str) -> str | None:
        relative = os.path.relpath(os.path.join("/", filename), "/")
        found = [os.path.join(d, relative) for d in paths[name][0] if os.path.isfile(os.path.join(d, relative))]
        return found[0] if found else None

    folder_paths = types.SimpleNamespace(
        models_dir=models,
        folder_names_and_paths=paths,
        add_model_folder_path=add_model_folder_path,
        get_folder_paths=lambda name: paths[name][0],
        get_filename_list=get_filename_list,
        get_full_path=get_full_path,
        get_save_image_path=_save_image_path,
        get_input_directory=lambda: str(fake.dir("input")),
        get_output_directory=lambda: str(fake.dir("output")),
        get_temp_directory=lambda: str(fake.dir("temp")),
    )

    class ProgressBar:
        def __init__(self, total: int) -> None:
            self.total = total

        def update_absolute(self, value, total=None, preview=None) -> None:
            fake.progress.append((value, total or self.total, preview))

    def throw_exception_if_processing_interrupted() -> None:
        if fake.interrupted:
            raise Interrupted("Processing interrupted")

    cpu = torch.device("cpu")
    management = types.SimpleNamespace(
        get_torch_device=lambda: cpu,
        unet_offload_device=lambda: cpu,
        intermediate_device=lambda: cpu,
        soft_empty_cache=lambda: None,
        throw_exception_if_processing_interrupted=throw_exception_if_processing_interrupted,
    )

    class Previewer:
        """latent_preview's previewer: records the latents, returns a picture of their size."""

        def decode_latent_to_preview_image(self, preview_format, x0):
            fake.previewed.append(x0)
            return preview_format, Image.new("RGB", (x0.shape[-1], x0.shape[-2])), 512

    comfy = types.ModuleType("comfy")
    modules = {
        "folder_paths": folder_paths,
        "comfy": comfy,
        "comfy.utils": types.SimpleNamespace(ProgressBar=ProgressBar),
        "comfy.model_management": management,
        "comfy.cli_args": types.SimpleNamespace(args=_Args(fake)),
        "comfy.latent_formats": types.SimpleNamespace(SD15=lambda: "SD15"),
        "latent_preview": types.SimpleNamespace(get_previewer=lambda device, latent_format: Previewer()),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake


class _Args:
    """comfy.cli_args.args, reading the test's knobs."""

    def __init__(self, fake: FakeComfy) -> None:
        self._fake = fake

    @property
    def disable_metadata(self) -> bool:
        return self._fake.disable_metadata

    @property
    def preview_method(self) -> str:
        return self._fake.preview_method

    preview_size = 512
