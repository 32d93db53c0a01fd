"""Opt-in model downloads: only the listed files, with progress, resume, sha256 check and atomic rename.

Nothing here runs at import. A download streams into `<target>.part` (resumed with an HTTP Range request
when the `.part` file exists), is checked against the registry's size and sha256, and only then renamed to
its target. A file with a wrong hash is deleted and reported. Files without a published sha256 are kept
but never reported as verified: their computed hash is written beside them (`<target>.sha256`) and a
warning is emitted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .media.hashing import sha256_file
from .registry import ModelFile, format_size

CHUNK_BYTES = 1 << 20
USER_AGENT = "comfyui-magicanimate-downloader"

ProgressFn = Callable[["Progress"], None]


@dataclass(frozen=True)
class Progress:
    file_id: str
    done: int
    total: int | None  # None when neither the registry nor the server gives a size


@dataclass(frozen=True)
class DownloadResult:
    file_id: str
    path: Path
    sha256: str
    verified: bool  # False only for files whose registry entry has no sha256


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its check; the message says what to do."""


class ChecksumError(DownloadError):
    pass


class ModelsUnavailableError(DownloadError):
    """Model files are missing and could not be downloaded: lists each file, its URL and where it goes."""

    def __init__(self, missing: list[tuple[ModelFile, str, Path]], models_dir: Path, reason: str | None):
        self.missing = missing
        self.models_dir = Path(models_dir)
        self.reason = reason
        super().__init__(format_missing(missing, self.models_dir, reason))


def format_missing(missing: list[tuple[ModelFile, str, Path]], models_dir: Path, reason: str | None) -> str:
    head = (
        f"{len(missing)} model file(s) could not be downloaded ({reason})."
        if reason
        else f"{len(missing)} model file(s) are missing."
    )
    lines = [
        head,
        f"Download each file below and save it at the path shown, inside the models folder {models_dir}",
        "(or run `python -m magicanimate_core download --models-dir <that folder>` where the hub is reachable):",
    ]
    for entry, url, target in missing:
        sha = f"sha256 {entry.sha256}" if entry.sha256 else "no published sha256"
        lines.append(f"  {target.relative_to(models_dir)}")
        lines.append(f"      from {url}")
        lines.append(f"      {format_size(entry.size, entry.size_note)}, {sha}, licence {entry.license}")
    return "\n".join(lines)


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def download_file(
    entry: ModelFile,
    url: str,
    target: Path,
    *,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
) -> DownloadResult:
    """Fetch one file to `target` (resuming `<target>.part`), verify it, then rename it into place.

    Raises `ChecksumError` (the bad file is removed) or `DownloadError` for HTTP/network failures (the
    `.part` file is kept so that a later call resumes).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if entry.size is not None and offset > entry.size:
        part.unlink()
        offset = 0
    digest = sha256_file(part) if offset else hashlib.sha256()
    total = entry.size
    if not (entry.size is not None and offset == entry.size):
        try:
            response = _open(url, offset, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not offset:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} while fetching {target.name}") from exc
            response = None  # 416: the .part file already holds the whole file
        if response is not None:
            with response:
                if offset and response.status != 206:  # server ignored Range: start again
                    offset, digest = 0, hashlib.sha256()
                length = response.headers.get("Content-Length")
                if total is None and length is not None:
                    total = offset + int(length)
                done = offset
                try:
                    with open(part, "ab" if offset else "wb") as out:
                        while block := response.read(CHUNK_BYTES):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if progress is not None:
                                progress(Progress(entry.id, done, total))
                except (OSError, http.client.HTTPException) as exc:  # connection cut: keep .part to resume
                    raise DownloadError(
                        f"{url}: connection lost after {done} bytes of {target.name}; "
                        f"run the same command again to resume from {part}"
                    ) from exc
    return _finish(entry, url, part, target, digest.hexdigest(), total)


def _finish(
    entry: ModelFile, url: str, part: Path, target: Path, actual: str, expected_size: int | None
) -> DownloadResult:
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        if size < expected_size:
            raise DownloadError(
                f"{url}: download of {target.name} stopped at {size} of {expected_size} bytes; "
                f"run the same command again to resume from {part}"
            )
        part.unlink()
        raise ChecksumError(f"{url}: {target.name} is {size} bytes, expected {expected_size}; the file was removed")
    if entry.sha256 is not None and actual != entry.sha256:
        part.unlink()
        raise ChecksumError(
            f"{url}: {target.name} has sha256 {actual}, expected {entry.sha256}; the corrupted download was "
            f"removed. Run the command again; if it fails again the mirror serves a different file."
        )
    os.replace(part, target)
    _write_hash_record(target, actual, verified=entry.sha256 is not None)
    if entry.sha256 is None:
        warnings.warn(
            f"{target}: no published sha256 for {entry.id}, so it cannot be verified; computed sha256 {actual} "
            f"(recorded in {target.name}.sha256)",
            stacklevel=3,
        )
    return DownloadResult(entry.id, target, actual, verified=entry.sha256 is not None)


def _write_hash_record(target: Path, sha256: str, *, verified: bool) -> None:
    record = target.with_name(target.name + ".sha256")
    status = "verified against the registry" if verified else "UNVERIFIED: computed after download"
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(f"{sha256}  {target.name}\n# {status}\n", encoding="utf-8")
    os.replace(tmp, record)


def download_all(
    files: Iterable[ModelFile],
    models_dir: Path,
    model: str,
    *,
    hf_endpoint: str | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
) -> list[DownloadResult]:
    """Download every file that is not yet present. Network failures become one `ModelsUnavailableError`
    listing all files still missing; checksum failures propagate as `ChecksumError`."""
    models_dir = Path(models_dir)
    todo = [(f, f.source_url(hf_endpoint), f.target_path(models_dir, model)) for f in files]
    todo = [item for item in todo if not item[0].is_present(models_dir, model)]
    results = []
    for index, (entry, url, target) in enumerate(todo):
        try:
            results.append(download_file(entry, url, target, progress=progress, timeout=timeout))
        except ChecksumError:
            raise
        except (DownloadError, urllib.error.URLError, OSError) as exc:
            reason = str(exc.reason) if isinstance(exc, urllib.error.URLError) else str(exc)
            raise ModelsUnavailableError(todo[index:], models_dir, reason) from exc
    return results


class TextProgressBar:
    """A one-line progress bar on a text stream (stderr by default), usable as a `ProgressFn`."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self._current: str | None = None

    def __call__(self, info: Progress) -> None:
        if info.total:
            filled = int(self.width * info.done / info.total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"\r{info.file_id}: [{bar}] {format_size(info.done)} / {format_size(info.total)}"
        else:
            text = f"\r{info.file_id}: {format_size(info.done)}"
        self.stream.write(text)
        if info.total and info.done >= info.total:
            self.stream.write("\n")
        self.stream.flush()
