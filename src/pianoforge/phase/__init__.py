"""Phase reconstruction: a (predicted) magnitude spectrogram -> audio, fast on one CPU core.

Every function takes the LINEAR magnitude ``|X|`` on the :mod:`pianoforge.audio.spectral` grid, shape
``(bins, frames)`` or ``(batch, bins, frames)`` with ``bins = n_fft // 2 + 1``, and returns float32 audio
of ``frames * hop_length`` samples, shape ``(samples,)`` or ``(batch, samples)`` (the inverse of
:func:`pianoforge.audio.spectral.stft`, which gives ``samples // hop`` frames). Modules:

- :mod:`~pianoforge.phase.methods`: :data:`PHASE_METHODS` (the one list of method names),
  :func:`zero_phase`, :func:`direct` (inverse STFT of a predicted complex spectrogram) and the
  dispatcher :func:`reconstruct` (``"pghi+gl"`` = PGHI, then Griffin-Lim);
- :mod:`~pianoforge.phase.griffinlim`: :func:`griffin_lim`, fast Griffin-Lim (Perraudin, Balazs &
  Søndergaard 2013), step for step ``librosa.griffinlim``; random, zero, PGHI or given initial phase;
- :mod:`~pianoforge.phase.pghi`: :func:`pghi`, phase-gradient heuristic integration (Průša, Balazs &
  Søndergaard 2017), non-iterative;
- :mod:`~pianoforge.phase.stream`: :class:`PhaseStream`, the same methods on a spectrogram that arrives
  block by block (bounded memory and look-ahead, equal to the whole-plane result);
- :mod:`~pianoforge.phase.engine`: the frame-major STFT engine and the numba kernel loader;
- :mod:`~pianoforge.phase.metrics`: :func:`spectral_convergence`, :func:`log_spectral_distance`;
- :mod:`~pianoforge.phase.npstream`: :class:`~pianoforge.phase.npstream.NumpyPhaseStream`, the streaming
  ``pghi+gl`` / ``pghi`` / ``zero`` on numpy and scipy.fft with the C kernels, no torch (the numpy engine's);
- :mod:`~pianoforge.phase.params` (constants), :mod:`pianoforge.native` (the C kernels): torch-free.

The names below are imported lazily (on first use), so that ``import pianoforge.phase.npstream`` does not
import torch.

Speed (30 s of 16 kHz piano, default preset, one core; docs/phase.md has the full table): Griffin-Lim
costs ~8.5 ms of CPU per iteration (32 iterations ~110x real time), PGHI ~45 ms (~650x), PGHI + 4
iterations ~75 ms (~400x). numba (a librosa dependency) compiles the kernels on first use (~5 s) and caches
them on disk; after that a process pays ~1 s once (numba import and cache load).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_WHERE = {  # name -> submodule: imported on first use, so that the torch-free modules (params, native, npstream)
    # load without torch (a render with the numpy engine never imports it)
    "griffin_lim": "griffinlim", "PHASE_METHODS": "methods", "check_method": "methods", "direct": "methods",
    "reconstruct": "methods", "zero_phase": "methods", "log_spectral_distance": "metrics",
    "spectral_convergence": "metrics", "HANN_GAMMA": "params", "PGHI_BLOCK": "params", "PGHI_LEVELS": "params",
    "PGHI_TOL": "params", "STREAM_TOL": "params", "context_frames": "params", "full_scale": "pghi",
    "STREAM_METHODS": "stream", "PghiStream": "stream", "PhaseStream": "stream", "stream_reconstruct": "stream",
}

__all__ = sorted([*_WHERE, "pghi"])


class _Package(types.ModuleType):
    """``pianoforge.phase.pghi`` is the function (as it was when this package imported everything eagerly),
    although a submodule of the same name exists: importing the submodule sets the package's attribute, and
    this property keeps answering the function."""

    @property
    def pghi(self) -> Any:
        from pianoforge.phase.pghi import pghi

        return pghi

    @pghi.setter
    def pghi(self, value: Any) -> None:  # the import system stores the submodule here: it stays in sys.modules
        pass


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pianoforge.phase' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pianoforge.phase.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
