"""Checks for numbers that arrive from outside the pack (node inputs, CLI flags), shared by both edges."""

from __future__ import annotations

import argparse
import math
import numbers


def check_finite(name: str, value: float, fix: str = "") -> float:
    """`value` as a float, or ValueError naming `name` when it is not a finite number (NaN, inf, a string).

    NaN passes every `<`/`>` bound check silently (`nan > 1.0` is False), so range checks alone do not catch it.
    `fix` says what to enter instead (e.g. "7.5 as released").
    """
    advice = f"enter a finite number ({fix})" if fix else "enter a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}; {advice}")
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value!r}, which is not a finite number; {advice}")
    return float(value)


def finite_float(text: str) -> float:
    """argparse `type=` for the CLIs' float flags: NaN and inf are refused there too, not only in the nodes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; enter one such as 7.5")
    return value
