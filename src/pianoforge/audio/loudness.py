"""ISO 226:2003 equal-loudness contours, for perceptually weighted spectral losses.

``iso226_spl(phon)`` gives the sound pressure level (dB) of a pure tone judged as loud as a 1 kHz tone at
``phon`` dB, at the standard's 29 frequencies (20 Hz .. 12.5 kHz). ``equal_loudness_gain`` turns it into
a linear per-frequency gain relative to 1 kHz (high where the ear is sensitive), interpolated on a log
frequency axis and held constant outside the tabulated range.

``gated_rms_db`` / ``normalize_loudness``: the level of a recording over its sounding blocks, and a gain that
brings it to a target (per-piece loudness normalization of recordings made at different gains).
"""

from __future__ import annotations

import numpy as np

# ISO 226:2003, Table 1: frequency (Hz), exponent alpha_f, magnitude of the linear transfer function
# normalized at 1 kHz L_U (dB), threshold of hearing T_f (dB).
_F = np.array([20, 25, 31.5, 40, 50, 63, 80, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250,
               1600, 2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 12500], dtype=np.float64)
_AF = np.array([0.532, 0.506, 0.480, 0.455, 0.432, 0.409, 0.387, 0.367, 0.349, 0.330, 0.315, 0.301, 0.288,
                0.276, 0.267, 0.259, 0.253, 0.250, 0.246, 0.244, 0.243, 0.243, 0.243, 0.242, 0.242, 0.245,
                0.254, 0.271, 0.301])
_LU = np.array([-31.6, -27.2, -23.0, -19.1, -15.9, -13.0, -10.3, -8.1, -6.2, -4.5, -3.1, -2.0, -1.1, -0.4,
                0.0, 0.3, 0.5, 0.0, -2.7, -4.1, -1.0, 1.7, 2.5, 1.2, -2.1, -7.1, -11.2, -10.7, -3.1])
_TF = np.array([78.5, 68.7, 59.5, 51.1, 44.0, 37.5, 31.5, 26.5, 22.1, 17.9, 14.4, 11.4, 8.6, 6.2, 4.4, 3.0,
                2.2, 2.4, 3.5, 1.7, -1.3, -4.2, -6.0, -5.4, -1.5, 6.0, 12.6, 13.9, 12.3])


def iso226_spl(phon: float) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in Hz, SPL in dB) of the ``phon`` equal-loudness contour (valid ~20..90 phon)."""
    af = 4.47e-3 * (10 ** (0.025 * phon) - 1.15) + (0.4 * 10 ** ((_TF + _LU) / 10 - 9)) ** _AF
    lp = (10.0 / _AF) * np.log10(af) - _LU + 94.0
    return _F.copy(), lp


def equal_loudness_gain(freqs: np.ndarray, phon: float = 60.0) -> np.ndarray:
    """Linear amplitude gain per frequency (Hz), 1.0 at 1 kHz: ``10 ** (-(SPL(f) - SPL(1 kHz)) / 20)``."""
    f, lp = iso226_spl(phon)
    rel = lp - np.interp(np.log(1000.0), np.log(f), lp)
    lf = np.log(np.clip(np.asarray(freqs, dtype=np.float64), f[0], f[-1]))
    return 10 ** (-np.interp(lf, np.log(f), rel) / 20.0)


GATE_DB = 50.0
"""Blocks more than this far below the loudest block are left out of the level (silence, room noise)."""


def gated_rms_db(x: np.ndarray, sample_rate: int, block_seconds: float = 0.05) -> float:
    """RMS level (dBFS) of mono audio over its 50 ms blocks within :data:`GATE_DB` of the loudest one."""
    x = np.asarray(x, dtype=np.float64)
    n = max(1, int(block_seconds * sample_rate))
    k = len(x) // n
    if k == 0:
        return float(10 * np.log10(np.mean(x**2) + 1e-20))
    ms = np.mean(x[: k * n].reshape(k, n) ** 2, axis=1)
    keep = ms >= ms.max() * 10 ** (-GATE_DB / 10)
    return float(10 * np.log10(ms[keep].mean() + 1e-20))


def normalize_loudness(x: np.ndarray, sample_rate: int, target_db: float,
                       peak_limit: float = 0.999) -> tuple[np.ndarray, float]:
    """(audio scaled to a gated RMS of ``target_db`` dBFS, the gain applied in dB); the gain is lowered
    where the peak would pass ``peak_limit`` (never clipped)."""
    level = gated_rms_db(x, sample_rate)
    gain = 10 ** ((target_db - level) / 20)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak * gain > peak_limit:
        gain = peak_limit / peak
    return (np.asarray(x, dtype=np.float32) * np.float32(gain)), float(20 * np.log10(gain))
