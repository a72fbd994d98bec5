"""Improvise: optional noise reduction of a clip (stationary spectral gating, noisereduce) with a noise profile
taken from the clip's quietest frames -- not from the whole signal, which would treat the music as noise."""

from __future__ import annotations

import numpy as np

from pianoforge.errors import PianoforgeError

NOISE_QUANTILE = 0.1
"""Noise reduction: the quietest 10 % of frames (by RMS) form the noise profile."""


def noise_profile(audio: np.ndarray, frame: int, quantile: float = NOISE_QUANTILE) -> np.ndarray:
    """The quietest ``quantile`` of ``frame``-sample frames (by RMS, at least 4 frames), concatenated."""
    n = len(audio) // frame
    if n < 4:
        return np.asarray(audio, dtype=np.float32)
    frames = np.asarray(audio[: n * frame], dtype=np.float32).reshape(n, frame)
    rms = np.sqrt((frames**2).mean(axis=1))
    k = max(4, int(round(quantile * n)))
    return frames[np.sort(np.argsort(rms, kind="stable")[:k])].reshape(-1)


def reduce_noise(audio: np.ndarray, sample_rate: int, frame: int) -> np.ndarray:
    """Stationary spectral gating (noisereduce) with :func:`noise_profile` as the noise clip."""
    try:
        import noisereduce
    except ImportError as e:
        raise PianoforgeError(None, "noise reduction needs noisereduce; install with `pip install -e .[eval]`") from e
    x = np.asarray(audio, dtype=np.float32)
    if not np.any(x):
        return x
    y = noisereduce.reduce_noise(y=x, sr=int(sample_rate), y_noise=noise_profile(x, frame), stationary=True,
                                 n_fft=max(256, 2 * frame))
    return np.asarray(y, dtype=np.float32)
