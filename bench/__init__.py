"""Benchmark of the MagicAnimate pipeline at full size with random weights; run `python -m bench --help`."""
