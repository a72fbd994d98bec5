"""What every subcommand module shares: the one-line error exit, plural nouns, common help texts."""

from __future__ import annotations

import sys

AUDIO_OUT_HELP = "output audio file: .wav or .flac (16-bit mono)"
ALLOW_LONG_HELP = "render even when the audio would not fit in the memory available (see docs/reliability.md)"


def fatal(msg: str, code: int = 2) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def _n(count: int, noun: str) -> str:
    """``"1 piece"``, ``"4 pieces"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
