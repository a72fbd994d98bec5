"""Spectral features as pure functions on torch tensors (numpy in, numpy out helpers at the bottom).

Conventions, fixed here and nowhere else:
- A signal of ``n * hop`` samples has exactly ``n`` frames; frame ``k`` describes samples around
  ``k * hop`` (centred window) or ``[k * hop, k * hop + n_fft)`` (``center=False``).
- Complex STFT: (..., bins, frames), ``bins = n_fft // 2 + 1``; no scaling (torch.stft default).
- Log-magnitude: natural log of ``|X| + eps`` (eps = ``AudioConfig.log_eps``), never -inf.
- Normalized log-magnitude: per-frequency-bin z-score with dataset moments (:class:`Normalizer`).
- PianoGAN range: normalized values clipped at +-3 std and divided by 3, so they lie in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pianoforge.config import AudioConfig

GAN_CLIP_STD = 3.0
"""PianoGAN clips normalized log-magnitudes at this many standard deviations."""


def window(cfg: AudioConfig, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Analysis window (n_fft,)."""
    if cfg.window == "rect":
        return torch.ones(cfg.n_fft, device=device, dtype=dtype)
    return torch.hann_window(cfg.n_fft, periodic=True, device=device, dtype=dtype)


def n_frames(num_samples: int, cfg: AudioConfig) -> int:
    """Frames for a signal of ``num_samples`` (the signal is cut or padded to ``frames * hop``)."""
    return num_samples // cfg.hop_length


def stft(x: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """(..., samples) float -> (..., bins, frames) complex, ``frames = samples // hop``."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    frames = x2.shape[-1] // cfg.hop_length
    if not cfg.center and cfg.n_fft > cfg.hop_length:  # pad so the last frame still fits
        x2 = torch.nn.functional.pad(x2, (0, cfg.n_fft - cfg.hop_length))
    spec = torch.stft(x2, cfg.n_fft, cfg.hop_length, window=window(cfg, x.device, x.dtype),
                      center=cfg.center, pad_mode="constant", return_complex=True)
    spec = spec[..., :frames]
    return spec.reshape(*lead, spec.shape[-2], frames)


def istft(spec: torch.Tensor, cfg: AudioConfig, length: int | None = None) -> torch.Tensor:
    """(..., bins, frames) complex -> (..., samples) float, ``samples = frames * hop`` unless given.

    Weighted overlap-add normalized by the window envelope of the frames that exist, so
    ``istft(stft(x)) == x`` to float precision over the whole signal, the last samples included.
    """
    lead = spec.shape[:-2]
    s2 = spec.reshape(-1, spec.shape[-2], spec.shape[-1])
    frames = s2.shape[-1]
    length = frames * cfg.hop_length if length is None else length
    win = window(cfg, spec.device, s2.real.dtype)
    offset = cfg.n_fft // 2 if cfg.center else 0  # frame k starts at k*hop - offset
    y = _overlap_add(torch.fft.irfft(s2.transpose(1, 2), n=cfg.n_fft, dim=-1), win, cfg.hop_length, offset, length)
    return y.reshape(*lead, length)


def _ola(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Plain overlap-add of (B, T, n_fft) frames placed every ``hop`` samples -> (B, (T-1)*hop + n_fft).

    When n_fft is a multiple of hop this is R = n_fft / hop shifted adds of (T, hop) blocks, ~20x faster
    on a CPU than ``torch.nn.functional.fold`` (which is the fallback for other geometries).
    """
    b, t, n_fft = frames.shape
    if n_fft % hop == 0:
        r = n_fft // hop
        blocks = frames.reshape(b, t, r, hop)
        out = frames.new_zeros(b, t + r - 1, hop)
        for j in range(r):
            out[:, j:j + t] += blocks[:, :, j]
        return out.reshape(b, -1)
    total = (t - 1) * hop + n_fft
    return torch.nn.functional.fold(frames.transpose(1, 2), (1, total), (1, n_fft), stride=(1, hop)).reshape(b, total)


def _window_envelope(win: torch.Tensor, hop: int, t: int) -> torch.Tensor:
    """Sum of squared windows of ``t`` frames every ``hop`` samples: ((t-1)*hop + n_fft,)."""
    n_fft = win.shape[0]
    if n_fft % hop == 0:
        r = n_fft // hop
        w2 = (win**2).reshape(r, hop)
        out = win.new_zeros(t + r - 1, hop)
        for j in range(r):
            out[j:j + t] += w2[j]
        return out.reshape(-1)
    return _ola((win**2)[None, None, :].expand(1, t, n_fft), hop)[0]


def _overlap_add(frames: torch.Tensor, win: torch.Tensor, hop: int, offset: int, length: int) -> torch.Tensor:
    """Weighted overlap-add of (B, T, n_fft) frames, frame k starting at sample k*hop - offset, normalized by
    the summed squared window of those frames; returns (B, length)."""
    y = _ola(frames * win, hop)
    y = y / _window_envelope(win, hop, frames.shape[1]).clamp_min(1e-8)
    if y.shape[-1] < offset + length:
        y = torch.nn.functional.pad(y, (0, offset + length - y.shape[-1]))
    return y[:, offset:offset + length]


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    return spec.abs()


def log_magnitude(mag: torch.Tensor, eps: float) -> torch.Tensor:
    """|X| (linear) -> log(|X| + eps) (natural log)."""
    return torch.log(mag + eps)


def inverse_log_magnitude(logmag: torch.Tensor, eps: float) -> torch.Tensor:
    """log(|X| + eps) -> |X| (clamped at 0)."""
    return (torch.exp(logmag) - eps).clamp_min(0.0)


def log_magnitude_of(x: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """(..., samples) audio -> (..., bins, frames) natural-log magnitude."""
    return log_magnitude(magnitude(stft(x, cfg)), cfg.log_eps)


@dataclass(frozen=True)
class Normalizer:
    """Per-frequency-bin dataset moments of log-magnitude; arrays of shape (bins,).

    ``normalize``: (..., bins, frames) log-magnitude -> z-scores. ``to_unit`` additionally clips at
    +-3 std and scales to [-1, 1] (PianoGAN); ``from_unit`` is its exact inverse inside the clip range.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_moments(cls, count: int, total: np.ndarray, total_sq: np.ndarray, floor: float = 1e-3) -> Normalizer:
        """From a frame count and per-bin sums of x and x**2 (accumulated in float64)."""
        mean = total / max(count, 1)
        var = np.maximum(total_sq / max(count, 1) - mean**2, 0.0)
        return cls(mean.astype(np.float64), np.maximum(np.sqrt(var), floor).astype(np.float64))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Normalizer:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))

    def _ms(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = torch.as_tensor(self.mean, dtype=like.dtype, device=like.device)[:, None]
        s = torch.as_tensor(self.std, dtype=like.dtype, device=like.device)[:, None]
        return m, s

    def normalize(self, logmag: torch.Tensor) -> torch.Tensor:
        m, s = self._ms(logmag)
        return (logmag - m) / s

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        m, s = self._ms(z)
        return z * s + m

    def to_unit(self, logmag: torch.Tensor) -> torch.Tensor:
        """Log-magnitude -> PianoGAN range [-1, 1] (clip at 3 std, divide by 3)."""
        return self.normalize(logmag).clamp(-GAN_CLIP_STD, GAN_CLIP_STD) / GAN_CLIP_STD

    def from_unit(self, y: torch.Tensor) -> torch.Tensor:
        """PianoGAN range [-1, 1] -> log-magnitude (exact inverse of ``to_unit`` where nothing was clipped)."""
        return self.denormalize(y * GAN_CLIP_STD)


# numpy conveniences for the data pipeline -------------------------------------------------------------

def log_magnitude_np(audio: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """(samples,) float audio -> (frames, bins) float32 log-magnitude (frames first, as stored)."""
    with torch.inference_mode():
        lm = log_magnitude_of(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), cfg)
    return lm.T.contiguous().numpy()
