"""`python -m magicanimate_core verify`: check the model files already on disk against the registry.

Size first (cheap, catches truncated downloads), then sha256 with a progress bar. A table shows each file as
ok / missing / size mismatch / hash mismatch / unpinned (no published hash; the computed one is shown), and
the command exits with status 1 when any file mismatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from . import registry
from .download import Progress, ProgressFn, TextProgressBar
from .media.hashing import sha256_file
from .registry import ModelFile, format_size

OK, MISSING, SIZE_MISMATCH, HASH_MISMATCH, UNPINNED = "ok", "missing", "size mismatch", "hash mismatch", "unpinned"
MISMATCHES = (SIZE_MISMATCH, HASH_MISMATCH)


@dataclass(frozen=True)
class FileCheck:
    entry: ModelFile
    path: Path
    status: str
    detail: str


def check_file(
    entry: ModelFile, path: Path, alternative: Path | None = None, progress: ProgressFn | None = None
) -> FileCheck:
    """Compare one file on disk with its registry entry: size first, then sha256."""
    if not path.is_file():
        if alternative is not None and alternative.is_file():
            detail = f"only the locally converted {alternative.name} is present; it has no published hash"
            return FileCheck(entry, alternative, UNPINNED, detail)
        required = registry.components()[entry.component].required
        return FileCheck(entry, path, MISSING, "" if required else "optional")
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        cause = "truncated or interrupted download" if size < entry.size else "not the registered file"
        return FileCheck(entry, path, SIZE_MISMATCH, f"{size:,} bytes, expected {entry.size:,} ({cause})")
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(Progress(entry.id, done, size))

    actual = sha256_file(path, progress=advance).hexdigest()
    if entry.sha256 is None:
        return FileCheck(entry, path, UNPINNED, f"{format_size(size)}, sha256 {actual} (no published hash)")
    if actual != entry.sha256:
        return FileCheck(entry, path, HASH_MISMATCH, f"sha256 {actual}, expected {entry.sha256} (corrupted)")
    return FileCheck(entry, path, OK, format_size(size))


def verify_files(
    files: Iterable[ModelFile], models_dir: Path, models: Iterable[str], progress: ProgressFn | None = None
) -> list[FileCheck]:
    """One check per registered file and model folder (a file outside the model folders is checked once)."""
    files, checks, seen = tuple(files), [], set()
    for model in models:
        for entry in files:
            path = entry.target_path(models_dir, model)
            if path not in seen:
                seen.add(path)
                checks.append(check_file(entry, path, entry.alternative_path(models_dir, model), progress))
    return checks


def format_table(checks: Sequence[FileCheck], models_dir: Path) -> str:
    rows = [("status", "file", "detail")]
    rows += [(c.status, str(c.path.relative_to(models_dir)), c.detail) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{s:<{widths[0]}}  {f:<{widths[1]}}  {d}".rstrip() for s, f, d in rows)


def summary(checks: Sequence[FileCheck], models_dir: Path) -> str:
    counts = {status: sum(c.status == status for c in checks) for status in (OK, *MISMATCHES, MISSING, UNPINNED)}
    line = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    bad = counts[SIZE_MISMATCH] + counts[HASH_MISMATCH]
    if bad:
        line += (
            f"\n{bad} file(s) do not match the published ones: delete them and run "
            f"`python -m magicanimate_core download --models-dir {models_dir}` to fetch them again"
        )
    elif any(c.status == MISSING and c.detail != "optional" for c in checks):
        line += f"\nfetch the missing files with `python -m magicanimate_core download --models-dir {models_dir}`"
    return line


def verify_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The `verify` subcommand: every model folder (or `--model`), plus the DensePose weights if present."""
    models_dir = Path(args.models_dir)
    root = models_dir / "magicanimate"
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    models = [args.model] if args.model else found or [registry.default_model_name()]
    checks = verify_files(registry.model_files(), models_dir, models, progress=TextProgressBar())
    out = out or sys.stdout
    print(format_table(checks, models_dir), file=out)
    print(summary(checks, models_dir), file=out)
    return 1 if any(c.status in MISMATCHES for c in checks) else 0
