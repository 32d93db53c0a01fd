"""Model files the pack can use: public source, size, sha256, licence and place in ComfyUI's models folder.

The data lives in `registry.json` beside this module; this module only reads it. A file's target is a path
relative to the models folder, with `{model}` standing for the model name (the folder under
`models/magicanimate/`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REGISTRY_PATH = Path(__file__).with_name("registry.json")
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV_VARS = ("MAGICANIMATE_HF_ENDPOINT", "HF_ENDPOINT")
MAGICANIMATE_COMPONENTS = ("appearance_encoder", "densepose_controlnet", "temporal_attention", "sd15", "vae")


@dataclass(frozen=True)
class Component:
    name: str
    title: str
    license: str
    license_url: str
    required: bool


@dataclass(frozen=True)
class ModelFile:
    """One downloadable file. `size`/`sha256` are None where no published value was found (see the notes)."""

    id: str
    component: str
    license: str
    target: str
    path: str
    size: int | None
    sha256: str | None
    hf_repo: str | None = None
    revision: str | None = None
    url: str | None = None
    size_note: str | None = None
    sha256_note: str | None = None
    alternative: str | None = None

    def source_url(self, hf_endpoint: str | None = None) -> str:
        """The download URL; Hugging Face files honour `hf_endpoint` (or $MAGICANIMATE_HF_ENDPOINT, $HF_ENDPOINT)."""
        if self.url is not None:
            return self.url
        base = (hf_endpoint or hf_endpoint_from_env()).rstrip("/")
        return f"{base}/{self.hf_repo}/resolve/{self.revision}/{self.path}"

    def target_path(self, models_dir: Path, model: str) -> Path:
        return Path(models_dir) / self.target.format(model=model)

    def alternative_path(self, models_dir: Path, model: str) -> Path | None:
        """A file that can stand in for this one (the converted `temporal_attention.safetensors`)."""
        return None if self.alternative is None else Path(models_dir) / self.alternative.format(model=model)

    def is_present(self, models_dir: Path, model: str) -> bool:
        alternative = self.alternative_path(models_dir, model)
        return self.target_path(models_dir, model).is_file() or (alternative is not None and alternative.is_file())


def hf_endpoint_from_env() -> str:
    for name in ENDPOINT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return DEFAULT_HF_ENDPOINT


@lru_cache(maxsize=1)
def _raw() -> dict:
    with open(REGISTRY_PATH, encoding="utf-8") as handle:
        return json.load(handle)


def default_model_name() -> str:
    return _raw()["default_model_name"]


def components() -> dict[str, Component]:
    return {name: Component(name=name, **data) for name, data in _raw()["components"].items()}


def model_files() -> tuple[ModelFile, ...]:
    """Every registered file, in registry order."""
    raw = _raw()
    comps = components()
    files = []
    for entry in raw["files"]:
        source = raw["sources"][entry["source"]]
        files.append(
            ModelFile(
                id=entry["id"],
                component=entry["component"],
                license=comps[entry["component"]].license,
                target=entry["target"],
                path=entry["path"],
                size=entry["size"],
                sha256=entry["sha256"],
                hf_repo=source.get("hf_repo"),
                revision=source.get("revision"),
                url=source.get("url"),
                size_note=entry.get("size_note"),
                sha256_note=entry.get("sha256_note"),
                alternative=entry.get("alternative"),
            )
        )
    return tuple(files)


def files_for(component_names: tuple[str, ...] | list[str]) -> tuple[ModelFile, ...]:
    """The files of the given components; unknown names raise `KeyError` naming the valid ones."""
    known = components()
    unknown = [name for name in component_names if name not in known]
    if unknown:
        raise KeyError(f"unknown model component(s) {unknown}; valid: {sorted(known)}")
    return tuple(f for f in model_files() if f.component in component_names)


def missing_files(files: tuple[ModelFile, ...], models_dir: Path, model: str) -> tuple[ModelFile, ...]:
    return tuple(f for f in files if not f.is_present(models_dir, model))


def unverifiable_files() -> tuple[str, ...]:
    """Ids of the files without a published sha256: downloads of these cannot be marked verified."""
    return tuple(f.id for f in model_files() if f.sha256 is None)


def format_size(size: int | None, note: str | None = None) -> str:
    if size is None:
        return note or "size unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
