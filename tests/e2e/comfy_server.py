"""Start and stop a real ComfyUI server (`main.py --cpu`) with custom-node packs mounted from outside it.

The server gets its own folders under `root`:

    root/input  root/output  root/temp (ComfyUI appends "temp")  root/user
    root/packs/<link name> -> pack            root/models/{magicanimate,densepose,checkpoints,vae}
    root/extra_model_paths.yaml               root/comfyui.log

and is mounted through `--extra-model-paths-config`, so the ComfyUI checkout is never modified. (The packs
are not in root/custom_nodes: newer ComfyUI with `--base-directory root` would load them twice.)
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MODEL_FOLDERS = ("magicanimate", "densepose", "checkpoints", "vae")
IMPORT_FAILURE_MARKERS = ("IMPORT FAILED", "Cannot import")


class ComfyServerError(RuntimeError):
    """The server did not start (the message carries the end of its log)."""


@dataclass
class ComfyServer:
    url: str
    comfyui_dir: Path
    root: Path
    input_dir: Path
    output_dir: Path
    temp_dir: Path
    models_dir: Path
    packs_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def model_dir(self, folder: str) -> Path:
        """`models/<folder>` as registered with ComfyUI (magicanimate, densepose, checkpoints, vae)."""
        return self.models_dir / folder

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the server's own process id, then SIGKILL it if it does not exit in time."""
        if self.process.poll() is not None:
            return
        try:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def supported_flags(comfyui_dir: Path) -> set[str]:
    """Command-line flags this ComfyUI version knows (the 2024 copy lacks several newer ones)."""
    source = (comfyui_dir / "comfy" / "cli_args.py").read_text(encoding="utf-8", errors="replace")
    candidates = ("--base-directory", "--user-directory", "--database-url", "--disable-api-nodes")
    return {flag for flag in candidates if f'"{flag}"' in source}


def write_extra_paths(path: Path, custom_nodes_dir: Path, models_dir: Path) -> None:
    entries = {"custom_nodes": custom_nodes_dir, **{name: models_dir / name for name in MODEL_FOLDERS}}
    lines = ["magicanimate_e2e:"] + [f"    {key}: {json.dumps(str(value))}" for key, value in entries.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def import_failures(log_text: str, needles: Sequence[str]) -> list[str]:
    """Log lines reporting a failed custom-node import that mention any of `needles` (pack names/paths)."""
    return [
        line
        for line in log_text.splitlines()
        if any(marker in line for marker in IMPORT_FAILURE_MARKERS) and any(needle in line for needle in needles)
    ]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/system_stats", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _prepare(root: Path, packs: Mapping[str, Path]) -> dict[str, Path]:
    dirs = {name: root / name for name in ("input", "output", "user", "custom_nodes", "packs", "models")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    for folder in MODEL_FOLDERS:
        (dirs["models"] / folder).mkdir(exist_ok=True)
    for link_name, pack in packs.items():
        link = dirs["packs"] / link_name
        if not link.exists():
            link.symlink_to(Path(pack).resolve(), target_is_directory=True)
    write_extra_paths(root / "extra_model_paths.yaml", dirs["packs"], dirs["models"])
    return dirs


def _command(comfyui_dir: Path, root: Path, dirs: dict[str, Path], port: int, python: str) -> list[str]:
    flags = supported_flags(comfyui_dir)
    command = [
        python, "-u", "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
        "--disable-auto-launch", "--input-directory", str(dirs["input"]),
        "--output-directory", str(dirs["output"]), "--temp-directory", str(root),
        "--extra-model-paths-config", str(root / "extra_model_paths.yaml"),
    ]
    if "--base-directory" in flags:
        command += ["--base-directory", str(root)]
    if "--user-directory" in flags:
        command += ["--user-directory", str(dirs["user"])]
    if "--database-url" in flags:
        command += ["--database-url", "sqlite:///:memory:"]
    if "--disable-api-nodes" in flags:
        command += ["--disable-api-nodes"]
    return command


def start_server(
    comfyui_dir: Path,
    packs: Mapping[str, Path],
    root: Path,
    *,
    python: str = sys.executable,
    startup_timeout: float = 240.0,
    attempts: int = 3,
) -> ComfyServer:
    """Start ComfyUI on 127.0.0.1 (a free port) and wait until `/system_stats` answers."""
    dirs = _prepare(root, packs)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}
    log_path = root / "comfyui.log"
    for attempt in range(1, attempts + 1):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                _command(comfyui_dir, root, dirs, port, python), cwd=comfyui_dir, env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        server = ComfyServer(
            url=url, comfyui_dir=comfyui_dir, root=root, input_dir=dirs["input"], output_dir=dirs["output"],
            temp_dir=root / "temp", models_dir=dirs["models"], packs_dir=dirs["packs"],
            log_path=log_path, process=process,
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if _answers(url):
                return server
            if process.poll() is not None:
                break
            time.sleep(0.25)
        server.stop()
        log = server.log_text()
        port_taken = "address already in use" in log.lower() or "errno 98" in log.lower()
        if port_taken and attempt < attempts:
            continue
        reason = (
            f"exited with code {process.returncode}" if process.returncode not in (None, -signal.SIGTERM)
            else f"did not answer /system_stats within {startup_timeout:.0f} s"
        )
        raise ComfyServerError(
            f"ComfyUI ({comfyui_dir}) {reason}; log {log_path}, last lines:\n{server.log_tail()}"
        )
    raise ComfyServerError("unreachable")
