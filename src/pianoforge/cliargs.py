"""Small argparse ``type=`` callables that check a numeric flag's range at parse time.

``ap.add_argument("--threads", type=positive_int)``: a bad value is argparse's one-line usage error
(``argument --threads: must be an integer >= 1, got '-1'``) and exit status 2, before any work starts.
Lowest layer: imports nothing from pianoforge.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, text: str) -> float:
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (either bound may be None: open on that side)."""

    def parse(text: str) -> int:
        v = _number(int, text)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be an integer {rng}, got {text!r}")
        return v

    parse.__name__ = "int"  # argparse names the type in its own messages
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str], float]:
    """A finite float in ``[lo, hi]`` (``lo_open``: ``(lo, hi]``, i.e. strictly above ``lo``)."""

    def parse(text: str) -> float:
        v = _number(float, text)
        low_bad = lo is not None and (v <= lo if lo_open else v < lo)
        if low_bad or (hi is not None and v > hi):
            parts = ([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None else []) + (
                [f"<= {hi:g}"] if hi is not None else [])
            raise argparse.ArgumentTypeError(f"must be a number {' and '.join(parts)}, got {text!r}")
        return v

    parse.__name__ = "float"
    return parse


def int_list(lo: int | None = None, hi: int | None = None) -> Callable[[str], tuple[int, ...]]:
    """A comma-separated list of integers, each in ``[lo, hi]`` (``--tracks 0,2``)."""
    one = int_in(lo, hi)

    def parse(text: str) -> tuple[int, ...]:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}")
        return tuple(one(t) for t in items)

    parse.__name__ = "list of integers"
    return parse


positive_int = int_in(1)
"""An integer >= 1 (counts, sizes, threads, rates)."""

nonneg_int = int_in(0)
"""An integer >= 0 (worker processes, iterations, seeds)."""

positive_float = float_in(0.0, lo_open=True)
"""A finite float > 0 (learning rates, minutes)."""

nonneg_float = float_in(0.0)
"""A finite float >= 0 (gains, seconds)."""

SEED_MAX = 2**63 - 1
"""Largest seed: torch, numpy and Python's random all take it."""

seed_int = int_in(0, SEED_MAX)
"""A random seed, 0..2**63-1 (``--seed 100000000000000000000000`` is refused at parse time)."""
