"""What every subcommand module shares: the one-line error exit, plural nouns, common help texts."""

from __future__ import annotations

import argparse
import sys

from pianoforge import cliargs

AUDIO_OUT_HELP = "output audio file: .wav or .flac (16-bit mono)"
ALLOW_LONG_HELP = "render even when the audio would not fit in the memory available (see docs/reliability.md)"


def fatal(msg: str, code: int = 2) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def _n(count: int, noun: str) -> str:
    """``"1 piece"``, ``"4 pieces"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


STRIKE_MAX = 8.0
"""Largest --strike-threshold / --strike-floor, in dictionary notes (the real scores' strikes lie in 0.5-2)."""


def add_strike_rule_args(p: argparse.ArgumentParser) -> None:
    """``--strike-threshold`` / ``--strike-floor``: how a NoteGAN plays its strikes (default: the checkpoint's)."""
    p.add_argument("--strike-threshold", type=cliargs.float_in(0.0, STRIKE_MAX), metavar="T",
                   help="notegan: play every strike of at least T dictionary notes (0: the gate it was trained "
                        "with; default: the checkpoint's inference.strike_threshold)")
    p.add_argument("--strike-floor", type=cliargs.float_in(0.0, STRIKE_MAX), metavar="F",
                   help="notegan, with a strike threshold: play each strike at F dictionary notes or louder "
                        "(default: the checkpoint's inference.strike_floor)")
