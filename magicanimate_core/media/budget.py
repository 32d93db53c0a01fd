"""Memory budget: refuse an allocation declared by a file's header before making it.

The budget is 80 % of the memory the machine has available now (`MemAvailable` in /proc/meminfo, else
half the physical memory), or `$MAGICANIMATE_MEMORY_BUDGET_MB` when set (tests, shared machines).
"""

from __future__ import annotations

import os
from collections.abc import Callable

BUDGET_ENV = "MAGICANIMATE_MEMORY_BUDGET_MB"
AVAILABLE_SHARE = 0.8
_FALLBACK_BYTES = 4 << 30  # when the platform reports no memory figure at all


class MemoryBudgetError(MemoryError, ValueError):
    """A declared allocation exceeds the memory budget; the message names what, the sizes and the fix.

    Also a `ValueError`: it is a refusal of the input, shown like the others by handlers that catch those.
    """


def format_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _available_bytes() -> tuple[int, str]:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2, "half of the physical"
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_BYTES, "assumed"


def memory_budget() -> tuple[int, str]:
    """(budget in bytes, where it comes from, in words)."""
    override = os.environ.get(BUDGET_ENV)
    if override:
        try:
            megabytes = float(override)
        except ValueError:
            raise ValueError(f"${BUDGET_ENV}={override!r} is not a number of megabytes; e.g. 4096") from None
        return int(megabytes * 1e6), f"${BUDGET_ENV}={override}"
    available, kind = _available_bytes()
    return int(available * AVAILABLE_SHARE), f"{AVAILABLE_SHARE:.0%} of the {format_bytes(available)} {kind} memory"


def check_allocation(
    what: str, nbytes: int, fix: str | Callable[[int], str], budget: tuple[int, str] | None = None
) -> None:
    """Raise `MemoryBudgetError` if `nbytes` (declared by `what`) exceeds the memory budget.

    `what` names the file or value and what it declares ("clip.mp4: 1000 frames of 1920x1080"); `fix` says
    what the user can change, or is called with the budget in bytes to say it ("set frame_load_cap to 90").
    `budget` reuses a `memory_budget()` taken earlier (when the memory since used is part of the request).
    """
    limit, source = budget or memory_budget()
    if nbytes > limit:
        advice = fix(limit) if callable(fix) else fix
        raise MemoryBudgetError(
            f"{what} needs {format_bytes(nbytes)} of memory, more than the budget of {format_bytes(limit)} "
            f"({source}); nothing was loaded. {advice}"
        )
