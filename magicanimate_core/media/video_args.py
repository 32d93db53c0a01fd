"""The VideoHelperSuite-style frame-selection options of both command lines, and their `read_video` keywords."""

from __future__ import annotations

import argparse

from ..validation import finite_float


def add_frame_selection_arguments(group: argparse._ActionsContainer) -> None:
    """The VideoHelperSuite-style loading controls, shared by both command lines."""
    group.add_argument("--frame-load-cap", type=int, default=0, help="load at most this many frames (0 = all)")
    group.add_argument("--skip-first-frames", type=int, default=0, help="drop this many frames first")
    group.add_argument("--select-every-nth", type=int, default=1, help="keep every n-th frame (default 1)")
    group.add_argument(
        "--force-rate", type=finite_float, default=0.0, help="resample to this frame rate before selecting (0 = source)"
    )


def frame_selection(args: argparse.Namespace) -> dict[str, int | float]:
    """`read_video` keyword arguments from the parsed frame-selection options."""
    return {
        "frame_load_cap": args.frame_load_cap,
        "skip_first_frames": args.skip_first_frames,
        "select_every_nth": args.select_every_nth,
        "force_rate": args.force_rate,
    }
