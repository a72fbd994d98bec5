"""Shared machinery of the phase methods: shape checks, the frame-major STFT engine, numba kernels.

:class:`Frames` computes exactly ``spectral.stft`` / ``spectral.istft`` for a signal of ``frames * hop``
samples on spectra laid out (batch, frames, bins), so every FFT runs over contiguous rows. :func:`jit`
compiles a kernel with numba once per process (cached on disk); without numba the callers fall back to
torch or pure Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pianoforge.audio import spectral
from pianoforge.config import AudioConfig


def batched(x: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """(bins, frames) or (batch, bins, frames) -> (batch, bins, frames), and whether a batch was given."""
    if x.dim() == 2:
        return x.unsqueeze(0), False
    if x.dim() == 3:
        return x, True
    raise ValueError(f"{name} must be (bins, frames) or (batch, bins, frames), got shape {tuple(x.shape)}")


def check_bins(x: torch.Tensor, cfg: AudioConfig) -> None:
    if x.shape[-2] != cfg.n_bins:
        raise ValueError(f"expected {cfg.n_bins} frequency bins (n_fft={cfg.n_fft}), got {x.shape[-2]}")


def real_mag(mag: torch.Tensor, cfg: AudioConfig) -> tuple[torch.Tensor, bool]:
    """A real (batch, bins, frames) float32 CPU magnitude (the numba kernels work on CPU memory)."""
    if mag.is_complex():
        raise ValueError("magnitude must be real (|X|); use direct() for a complex spectrogram")
    m, was_batched = batched(mag, "magnitude")
    check_bins(m, cfg)
    return m.to("cpu", torch.float32), was_batched


def unbatch(y: torch.Tensor, was_batched: bool) -> torch.Tensor:
    return y if was_batched else y[0]


def fit_length(y: torch.Tensor, length: int | None) -> torch.Tensor:
    """Cut or zero-pad the last axis to ``length`` (None: as is)."""
    if length is None or length == y.shape[-1]:
        return y.contiguous()
    if length < y.shape[-1]:
        return y[..., :length].contiguous()
    return torch.nn.functional.pad(y, (0, length - y.shape[-1]))


def polar(mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """mag * exp(i phase), complex64 (2x faster than torch.polar on CPU)."""
    return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))


class Frames:
    """Frame-major STFT engine for one geometry: exactly ``spectral.stft`` / ``spectral.istft`` for a
    signal of ``frames * hop`` samples, on spectra laid out (batch, frames, bins) (contiguous rfft rows).

    The signal lives in a zero-padded buffer of ``size`` samples; the audio is ``buffer[off:off + length]``
    (``off = n_fft // 2`` when centred). ``synth`` overlap-adds windowed frames and multiplies by
    ``inv_env``: 1 / (sum of squared windows) inside the audio and 0 outside it, which is istft's
    normalisation plus stft's zero padding in one step. ``analyse`` frames the buffer and takes rfft.
    """

    def __init__(self, cfg: AudioConfig, frames: int) -> None:
        n, hop = cfg.n_fft, cfg.hop_length
        self.cfg, self.frames, self.n_fft, self.hop = cfg, frames, n, hop
        self.length = frames * hop
        self.win = spectral.window(cfg)
        self.off = n // 2 if cfg.center else 0  # frame k starts at sample k * hop - off
        self.size = max((frames - 1) * hop + n, self.off + self.length)
        env = self._ola((self.win**2).expand(1, frames, n))[0].clamp_min(1e-8)  # as spectral.istft
        inv = torch.zeros(self.size)
        inv[self.off:self.off + self.length] = 1.0 / env[self.off:self.off + self.length]
        self.inv_env = inv

    def _ola(self, fr: torch.Tensor) -> torch.Tensor:
        """Overlap-add (batch, k, n_fft) frames starting at 0, hop, 2 hop... into (batch, size)."""
        b, k, n = fr.shape
        hop = self.hop
        if n % hop == 0:  # sum of n/hop shifted block copies: far faster than fold (col2im)
            r = n // hop
            rows = max(k + r - 1, -(-self.size // hop))
            out = fr.new_zeros(b, rows, hop)
            blocks = fr.reshape(b, k, r, hop)
            for j in range(r):
                out[:, j:j + k] += blocks[:, :, j]
            return out.reshape(b, rows * hop)[:, :self.size]
        total = max(self.size, (k - 1) * hop + n)
        y = torch.nn.functional.fold(fr.transpose(1, 2), (1, total), (1, n), stride=(1, hop))
        return y.reshape(b, total)[:, :self.size]

    def synth(self, spec: torch.Tensor) -> torch.Tensor:
        """(batch, frames, bins) complex -> (batch, size) buffer holding the istft audio at ``off``."""
        fr = torch.fft.irfft(spec, n=self.n_fft, dim=-1)
        fr.mul_(self.win)
        return self._ola(fr).mul_(self.inv_env)

    def analyse(self, buf: torch.Tensor) -> torch.Tensor:
        """(batch, size) buffer -> (batch, frames, bins) complex, the stft of the audio it holds."""
        fr = buf.unfold(-1, self.n_fft, self.hop)[:, :self.frames] * self.win
        return torch.fft.rfft(fr, dim=-1)

    def audio(self, buf: torch.Tensor) -> torch.Tensor:
        """(batch, size) buffer -> (batch, frames * hop) audio."""
        return buf[:, self.off:self.off + self.length]


_JIT: dict[Callable[..., Any], Callable[..., Any] | None] = {}


def jit(fn: Callable[..., Any], fastmath: bool = False) -> Callable[..., Any] | None:
    """The numba-compiled version of the module-level function ``fn`` (compiled once per process, cached on
    disk beside its module), or None if numba cannot be imported."""
    if fn not in _JIT:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a librosa dependency
            _JIT[fn] = None
        else:
            _JIT[fn] = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=fastmath)(fn)
    return _JIT[fn]


def flat(x: torch.Tensor) -> np.ndarray:
    """A contiguous tensor as a flat numpy view (complex as interleaved re, im)."""
    return (torch.view_as_real(x) if x.is_complex() else x).reshape(-1).numpy()
