"""Hostile files built cheaply by the tests: a picture that declares any size in a few kB."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def black_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG of any declared size, in a few kB (rows of zeros compress ~1000:1)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (1 + (width + 7) // 8), zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path
