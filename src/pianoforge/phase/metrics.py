"""Metrics of phase reconstructions, shared with evaluation code: spectral convergence against a target
magnitude and the multi-resolution log-spectral distance between two signals (both phase-blind)."""

from __future__ import annotations

import numpy as np
import torch

from pianoforge.audio import spectral
from pianoforge.config import AudioConfig
from pianoforge.phase.engine import fit_length


@torch.inference_mode()
def spectral_convergence(audio: torch.Tensor, mag: torch.Tensor, cfg: AudioConfig) -> float:
    """``|| |stft(audio)| - mag ||_F / || mag ||_F`` (0 = the audio has exactly that magnitude).

    audio: (samples,) or (batch, samples) float; mag: (bins, frames) or (batch, bins, frames) linear
    magnitude. The audio is cut or zero-padded to ``frames * hop`` samples before the re-analysis.
    """
    y = fit_length(torch.as_tensor(audio, dtype=torch.float32), mag.shape[-1] * cfg.hop_length)
    est = spectral.stft(y, cfg).abs()
    ref = mag.to(torch.float32)
    return float(torch.linalg.vector_norm(est - ref) / torch.linalg.vector_norm(ref).clamp_min(1e-12))


@torch.inference_mode()
def log_spectral_distance(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, sample_rate: int,
                          n_ffts: tuple[int, ...] = (512, 1024, 2048)) -> float:
    """Multi-resolution log-spectral distance between two signals, in dB (0 = identical magnitudes).

    ``LSD = mean over n_fft in n_ffts of sqrt(mean over frames and bins of
    (20 log10(|X| + 1e-5) - 20 log10(|Y| + 1e-5))**2)``, with centred periodic-Hann STFTs of hop
    ``n_fft // 4`` (:func:`pianoforge.audio.spectral.stft`). x, y: (samples,) audio at ``sample_rate`` Hz
    (amplitude scale matters: full scale is 1.0); the longer one is cut to the shorter. ``n_ffts`` are in
    samples at ``sample_rate`` (e.g. 32/64/128 ms at 16 kHz). Phase-blind, so it scores phase
    reconstructions against the reference audio without needing the reference phase.
    """
    a = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x)
    b = torch.as_tensor(np.asarray(y, dtype=np.float32) if not isinstance(y, torch.Tensor) else y)
    a, b = a.to(torch.float32).reshape(-1), b.to(torch.float32).reshape(-1)
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[:n], b[:n]
    dists = []
    for n_fft in n_ffts:
        cfg = AudioConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, window="hann",
                          center=True)
        la = 20.0 * torch.log10(spectral.stft(a, cfg).abs() + 1e-5)
        lb = 20.0 * torch.log10(spectral.stft(b, cfg).abs() + 1e-5)
        dists.append(float(torch.sqrt(torch.mean((la - lb) ** 2))))
    return float(np.mean(dists))
