"""Names the command line offers as choices, defined once and cheap to import (stdlib only, layer 0).

:mod:`pianoforge.config` re-exports them (:data:`PHASE_METHODS` and :data:`INFERENCE_PHASES` are part of the
config's vocabulary); the CLI imports them from here, so that building its parser, and ``pianoforge --help``,
imports neither yaml nor the config dataclasses, let alone torch.
"""

from __future__ import annotations

from pathlib import Path

PHASE_METHODS: tuple[str, ...] = ("pghi+gl", "griffinlim", "pghi", "zero")
"""Magnitude -> audio methods (:func:`pianoforge.phase.reconstruct`, the streaming driver, the GAN inverse
chain), the default first: PGHI then Griffin-Lim; Griffin-Lim from random phase; PGHI alone; zero phase."""

INFERENCE_PHASES: tuple[str, ...] = (*PHASE_METHODS, "direct")
"""Phase paths of perform rendering: the magnitude methods plus ``direct`` (the model's own complex or
waveform output, no phase estimation)."""

ENGINES: tuple[str, ...] = ("auto", "numpy", "torch")
"""Perform inference engines (:class:`pianoforge.inference.PerformRenderer`, ``render --engine``), the default
first: numpy where the checkpoint qualifies (a notes head without a residual trunk: no torch import), else
torch; numpy (refuses other checkpoints); torch."""

GAN_PHASES: tuple[str, ...] = PHASE_METHODS
"""Phase reconstructions of generated magnitudes (a GAN predicts magnitudes only: no ``direct``)."""

GAN_MAX_SECONDS = 3600.0
"""Longest clip ``pianoforge generate --seconds`` makes (one hour; generation streams, so memory does not grow
with it, but one clip's WAV does: 58 MB at 8 kHz)."""

PRESETS_DIR = Path(__file__).resolve().with_name("presets")


def preset_names() -> list[str]:
    """Names of the presets shipped in ``pianoforge/presets`` (``default``, ``lan2018``, ...), sorted."""
    return sorted(p.name[:-5] for p in PRESETS_DIR.iterdir() if p.name.endswith(".yaml"))
