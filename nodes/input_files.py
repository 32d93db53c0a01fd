"""Files picked from ComfyUI's input folder: listing, validation (no path traversal) and change stamps."""

from __future__ import annotations

import os
from pathlib import Path

from . import comfy_adapter as comfy


def check_choice(name: str, choices: list[str]) -> str | None:
    """Why `name` cannot be loaded from the input folder (None when it can).

    The name must be one of the listed `choices`, and must resolve (symlinks included) to an existing
    file inside the input folder: "../x", absolute paths and links that leave the folder are refused.
    """
    folder = comfy.input_directory()
    if "\0" in name:
        return (
            f"{name!r} contains a NUL character (\\0), which no file name can hold; pick a file from the list "
            "or upload it again"
        )
    real = os.path.realpath(folder / name)
    if os.path.commonpath([str(folder), real]) != str(folder):
        return f"'{name}' is outside ComfyUI's input folder ({folder}); pick a file from the list or upload it"
    if not os.path.isfile(real):
        return f"'{name}' does not exist in ComfyUI's input folder ({folder}); upload it or refresh the list"
    if name not in choices:
        return f"'{name}' is not one of the files offered in ComfyUI's input folder ({folder})"
    return None


def resolve(name: str, choices: list[str]) -> Path:
    """The path of input file `name`, or ValueError with the reason from `check_choice`."""
    problem = check_choice(name, choices)
    if problem is not None:
        raise ValueError(problem)
    return comfy.input_directory() / name


def file_stamp(path: Path) -> str:
    """Path, size and modification time of an input file: ComfyUI re-runs a loader when one changes.

    Cheap on every queue (no hashing), as core LoadVideo and VideoHelperSuite do.
    """
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
