"""File content hashes (sha256), streamed so a 5 GB checkpoint never sits in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(
    path: Path, digest: hashlib._Hash | None = None, progress: Callable[[int], None] | None = None
) -> hashlib._Hash:
    """Feed the file's bytes into `digest` (a new sha256 by default) and return it; `progress(bytes)` per chunk."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest
