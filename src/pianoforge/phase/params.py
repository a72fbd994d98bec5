"""The phase methods' constants and geometry helpers, without torch (the numpy stream,
:mod:`pianoforge.phase.npstream`, shares them with the torch one); :mod:`~pianoforge.phase.pghi` and
:mod:`~pianoforge.phase.stream` re-export them."""

from __future__ import annotations

import math

from pianoforge.config import AudioConfig

HANN_GAMMA = 0.25645
"""Time-frequency ratio of the Gaussian best fitting a Hann window: ``gamma = 0.25645 * n_fft**2``
(Průša et al. 2017, Table I). PGHI treats the window as that Gaussian."""

PGHI_TOL = 1e-5
"""PGHI: coefficients below ``tol * max|X|`` (per item) are not integrated; they keep phase 0."""

PGHI_LEVELS = 1024
"""PGHI: log-magnitude levels of the bucket queue that orders the integration (~0.1 dB apart at tol 1e-5)."""

PGHI_BLOCK = 16
"""PGHI: frames integrated together (keeps the working set in cache; quality is the same as one block)."""

STREAM_TOL = 1e-6
"""PGHI with a fixed ``reference`` (streaming, where the piece's peak is not known in advance): coefficients
below ``STREAM_TOL * reference`` keep phase 0. The reference is the largest possible ``|X|`` of full-scale
audio (:func:`full_scale`); piano renders peak 10-25 dB below it, so the floor sits about 100 dB under the
piece's own peak, as ``PGHI_TOL`` puts it for the whole plane."""

BLOCK_FRAMES = 1024
"""Frames of audio a streaming block produces (a multiple of the PGHI block). 1024 (~16 s at the default
preset) rather than 2048: a long render's peak RSS 157 instead of 243 MB, for 2 x 24 context frames of
Griffin-Lim per 1024 (4.7 % of its work instead of 2.3 %)."""


def context_frames(cfg: AudioConfig, n_iter: int) -> int:
    """Frames on each side of a block that make its interior exact after ``n_iter`` Griffin-Lim iterations
    (each iteration reaches ``ceil(n_fft / hop) - 1`` frames further; the final iSTFT and the window envelope
    need two more frame spans)."""
    r = math.ceil(cfg.n_fft / cfg.hop_length)
    return (n_iter + 2) * r


def gamma_of(cfg: AudioConfig, gamma: float | None) -> float:
    """The Gaussian time-frequency ratio (samples**2) PGHI assumes for ``cfg``'s window."""
    if gamma is not None:
        return float(gamma)
    if cfg.window != "hann":
        raise ValueError(f"pghi needs the window's Gaussian time-frequency ratio; none known for "
                         f"window={cfg.window!r} (pass gamma=..., in samples**2)")
    return HANN_GAMMA * cfg.n_fft**2
