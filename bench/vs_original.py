"""`python -m bench.vs_original`: our pipeline side by side with the ORIGINAL MagicAnimate, when its environment exists.

Wraps the shared comparison tool (`../shared/perf/perf_vs_original.py`, or `--tool PATH`): same random `small`
checkpoints, inputs, settings and threads, runs alternating original / ours. Saves the tool's JSON report under
`bench/results/` and prints the ratio table (ours seconds / original seconds per alternating pair), the load
average before and after, peak resident memory and per-component seconds. Without the original's environment
(`original_env.sh` not run) it says what is missing and exits with status 2.

  python -m bench.vs_original --quick                  # 16 frames, one pair
  python -m bench.vs_original --frames 16 48 --runs 3  # the full comparison (about half an hour on 2 cores)
Other arguments are passed to the tool (e.g. --max-others 1.0 on a busy machine: keep every pair, noted as such).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

PACK = Path(__file__).resolve().parents[1]
DEFAULT_TOOL = PACK.parent / "shared" / "perf" / "perf_vs_original.py"
RESULTS = PACK / "bench" / "results"


def summary(report: dict) -> list[str]:
    """One line per frame count: s/frame of both sides, the ratio per pair, peak memory, agreement."""
    lines = [f"load average start {report['load_average']['start']} end {report['load_average']['end']}"]
    for frames, r in report["frames"].items():
        sides = {s: d["summary"] for s, d in r["sides"].items()}
        ratio = r.get("ratio_ours_over_original", {})
        agree = r["agreement"].get("ours_vs_live_original", {})
        rss = {s: (d["peak_rss_bytes"] or 0) / 2**30 for s, d in sides.items()}
        lines.append(
            f"{frames:>3} frames: original {sides['original']['median_seconds_per_frame']:.3f} s/f, "
            f"ours {sides['ours']['median_seconds_per_frame']:.3f} s/f, ours/original per pair "
            f"{ratio.get('per_pair')} (median {ratio.get('median', float('nan')):.3f}"
            f"{', all pairs contended' if ratio.get('all_pairs_contended') else ''}); peak RSS GiB original "
            f"{rss['original']:.2f}, ours {rss['ours']:.2f}; "
            f"video max abs {agree.get('video_max_abs', float('nan')):.2g}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tool", type=Path, default=Path(os.environ.get("PERF_VS_ORIGINAL", DEFAULT_TOOL)))
    parser.add_argument("--python", default=str(PACK / ".venv" / "bin" / "python"), help="our side's interpreter")
    args, passthrough = parser.parse_known_args(argv)
    if not args.tool.is_file():
        print(
            f"the side-by-side tool {args.tool} is not there: point --tool (or PERF_VS_ORIGINAL) at "
            "perf_vs_original.py and run its original_env.sh once",
            file=sys.stderr,
        )
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report_path = RESULTS / f"vs_original-{stamp}.json"
    command = [sys.executable, str(args.tool), "--pack", str(PACK), "--ours-python", args.python]
    done = subprocess.run([*command, *passthrough, "--json", str(report_path)], check=False)
    if done.returncode != 0 or not report_path.is_file():
        print(f"the side-by-side tool failed (exit {done.returncode}); its messages are above", file=sys.stderr)
        return done.returncode or 1
    print("\n".join(summary(json.loads(report_path.read_text()))))
    print(f"report: {report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
