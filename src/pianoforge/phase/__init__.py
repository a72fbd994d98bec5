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
- :mod:`~pianoforge.phase.metrics`: :func:`spectral_convergence`, :func:`log_spectral_distance`.

Speed (30 s of 16 kHz piano, default preset, one core; docs/phase.md has the full table): Griffin-Lim
costs ~8.5 ms of CPU per iteration (32 iterations ~110x real time), PGHI ~45 ms (~650x), PGHI + 4
iterations ~75 ms (~400x). numba (a librosa dependency) compiles the kernels on first use (~5 s) and caches
them on disk; after that a process pays ~1 s once (numba import and cache load).
"""

from pianoforge.phase.griffinlim import griffin_lim
from pianoforge.phase.methods import PHASE_METHODS, check_method, direct, reconstruct, zero_phase
from pianoforge.phase.metrics import log_spectral_distance, spectral_convergence
from pianoforge.phase.pghi import HANN_GAMMA, PGHI_BLOCK, PGHI_LEVELS, PGHI_TOL, STREAM_TOL, full_scale, pghi
from pianoforge.phase.stream import (
           STREAM_METHODS,
           PghiStream,
           PhaseStream,
           context_frames,
           stream_reconstruct,
)

__all__ = ["HANN_GAMMA", "PGHI_BLOCK", "PGHI_LEVELS", "PGHI_TOL", "PHASE_METHODS", "STREAM_METHODS", "STREAM_TOL",
           "PghiStream", "PhaseStream", "check_method", "context_frames", "direct", "full_scale", "griffin_lim",
           "log_spectral_distance", "pghi", "reconstruct", "spectral_convergence", "stream_reconstruct",
           "zero_phase"]
