"""Spectral and waveform distances between a rendered piece and the reference audio of the same piece.

All functions take mono float audio of shape (samples,) at the same sample rate; when the two differ in
length both are cut to the shorter. Zero means identical for every distance here.

=================  ==========================================================================================
key                definition
=================  ==========================================================================================
``mse``            mean of (x - y)**2 over samples (phase-sensitive; full scale is 1.0)
``sc``             spectral convergence ``|| |X| - |Y| ||_F / || |Y| ||_F`` on the preset's STFT grid
``lsd_db``         log-spectral distance in dB, mean over n_fft 512/1024/2048 (:func:`phase.log_spectral_distance`)
``mrstft``         multi-resolution STFT distance, n_fft 256..2048 (:func:`losses.multi_resolution_stft`)
``lms_mse``        MSE of per-bin z-scored natural-log magnitudes (the paper's LMS MSE, 0.0031 / 0.0062)
=================  ==========================================================================================
"""

from __future__ import annotations

import numpy as np
import torch

from pianoforge.audio import spectral
from pianoforge.audio.spectral import Normalizer
from pianoforge.config import AudioConfig
from pianoforge.losses import multi_resolution_stft
from pianoforge.phase import log_spectral_distance, spectral_convergence

AUDIO_METRICS = ("mse", "sc", "lsd_db", "mrstft")
"""Keys of :func:`audio_metrics`."""


def trim_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float32 (samples,), cut to the shorter length."""
    a = np.asarray(x, dtype=np.float32).reshape(-1)
    b = np.asarray(y, dtype=np.float32).reshape(-1)
    n = min(a.shape[0], b.shape[0])
    return a[:n], b[:n]


def time_mse(x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared sample difference of two (samples,) signals (cut to the shorter)."""
    a, b = trim_pair(x, y)
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) if a.size else 0.0


def spectral_conv(x: np.ndarray, ref: np.ndarray, cfg: AudioConfig) -> float:
    """Spectral convergence of ``x`` against ``ref`` on ``cfg``'s STFT grid (see :mod:`phase`)."""
    a, b = trim_pair(x, ref)
    n = (a.shape[0] // cfg.hop_length) * cfg.hop_length
    if n == 0:
        return 0.0
    with torch.inference_mode():
        ref_mag = spectral.stft(torch.from_numpy(b[:n].copy()), cfg).abs()
        return spectral_convergence(torch.from_numpy(a[:n].copy()), ref_mag, cfg)


def lsd_db(x: np.ndarray, ref: np.ndarray, sample_rate: int) -> float:
    """Multi-resolution log-spectral distance in dB (:func:`pianoforge.phase.log_spectral_distance`)."""
    a, b = trim_pair(x, ref)
    return log_spectral_distance(a, b, sample_rate)


def mrstft_distance(x: np.ndarray, ref: np.ndarray) -> float:
    """Multi-resolution STFT distance (spectral convergence + mean |log-magnitude difference|, averaged
    over n_fft 256/512/1024/2048) of :func:`pianoforge.losses.multi_resolution_stft`."""
    a, b = trim_pair(x, ref)
    if a.size < 2:
        return 0.0
    with torch.inference_mode():
        return float(multi_resolution_stft(torch.from_numpy(a.copy())[None], torch.from_numpy(b.copy())[None]))


def audio_metrics(x: np.ndarray, ref: np.ndarray, cfg: AudioConfig) -> dict[str, float]:
    """All waveform/spectral distances of ``x`` against ``ref`` ((samples,) at ``cfg.sample_rate``)."""
    return {"mse": time_mse(x, ref), "sc": spectral_conv(x, ref, cfg), "lsd_db": lsd_db(x, ref, cfg.sample_rate),
            "mrstft": mrstft_distance(x, ref)}


def lms_mse(pred_logmag: np.ndarray, ref_logmag: np.ndarray, normalizer: Normalizer) -> float:
    """The paper's LMS MSE: mean over frames and bins of the squared difference of per-bin z-scores.

    pred_logmag, ref_logmag: (frames, bins) natural-log magnitudes log(|X| + eps) (the store's ``spec``
    layout); the longer is cut to the shorter in frames. ``normalizer``: the store's per-bin moments,
    (bins,) each. Equal to mean(((pred - ref) / std)**2).
    """
    p = np.asarray(pred_logmag, dtype=np.float64)
    r = np.asarray(ref_logmag, dtype=np.float64)
    if p.ndim != 2 or r.ndim != 2 or p.shape[1] != r.shape[1] or p.shape[1] != normalizer.std.shape[0]:
        raise ValueError(f"lms_mse needs (frames, bins) arrays with {normalizer.std.shape[0]} bins, got "
                         f"{p.shape} and {r.shape}")
    n = min(p.shape[0], r.shape[0])
    if n == 0:
        return 0.0
    z = (p[:n] - r[:n]) / normalizer.std[None, :]
    return float(np.mean(z**2))


def lms_mse_of_audio(x: np.ndarray, ref_logmag: np.ndarray, normalizer: Normalizer, cfg: AudioConfig) -> float:
    """LMS MSE of the re-analysed audio ``x`` ((samples,), log-magnitude on ``cfg``'s grid) against a
    (frames, bins) reference log-magnitude: how far the spectrogram that is actually heard is from the target
    (includes what phase reconstruction loses). Evaluation passes the re-analysed reference audio."""
    return lms_mse(spectral.log_magnitude_np(np.asarray(x, dtype=np.float32).reshape(-1), cfg), ref_logmag,
                   normalizer)
