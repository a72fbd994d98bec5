"""One error type for bad input: ``PianoforgeError(path, problem)`` prints as ``"path: problem"``.

Single-file commands turn it into a one-line message and a non-zero exit; batch jobs record it and go on.
"""

from __future__ import annotations

from pathlib import Path


class PianoforgeError(Exception):
    """A problem with a named input or output (a file, a folder, a preset)."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


class ScoreError(PianoforgeError):
    """A MIDI file that cannot be used as a piano score (corrupt, empty, drum-only, ...)."""


class AudioError(PianoforgeError):
    """An audio file that is missing, unreadable, or at an unusable sample rate."""


class RenderError(PianoforgeError):
    """FluidSynth or the soundfont failed."""


class StoreError(PianoforgeError):
    """A dataset store that is missing, of an unknown version, or built with another configuration."""


class ConfigError(PianoforgeError):
    """An unknown preset, an unknown key or a bad value in a configuration."""


class OutputError(PianoforgeError):
    """An output that cannot be written: a special file in the way, a missing or read-only folder, a full disk,
    an unsupported format, an existing file without ``--force``."""


class TrainingError(PianoforgeError):
    """A training run that cannot start (too little data, no validation split, no GPU) or must stop (a
    non-finite loss); what was saved before stays valid."""
