"""Run test code in a child process whose address space is capped, so a memory bomb fails fast instead of swapping.

`run_capped(code)` runs `code` under `RLIMIT_AS` (3 GiB by default: the imports need about 0.8 GB) with a
small memory budget, and returns the finished process; the code prints what the test asserts on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CAP = 3 << 30

_PRELUDE = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
"""


def run_capped(
    code: str, *, cap_bytes: int = DEFAULT_CAP, budget_mb: float = 500, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (pack root on the path) under an address-space cap and a memory budget."""
    env = dict(os.environ, MAGICANIMATE_MEMORY_BUDGET_MB=str(budget_mb), MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACK_ROOT), env.get("PYTHONPATH")]))
    script = _PRELUDE.format(cap=cap_bytes) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=PACK_ROOT, env=env
    )
