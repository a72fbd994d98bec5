"""Experiments: the GAN model options that no preset uses, in one place (kept so their runs can be repeated).

- ``model.harmonic`` (framegan): :class:`HarmonicHead`, learned per-key harmonic templates summed in linear
  magnitude (docs/improvise.md, "The harmonic head"); its clips were broadband textures, not notes;
- ``model.patch_channels`` (framegan, notegan): a 2-D patch branch beside the frame critic
  (:class:`~pianoforge.models.gan.frame.FrameCritic`); tried, not better.

:data:`EXPERIMENTS` names them (docs/improvise.md lists them as experiments). Nothing
shipped depends on this module (NoteGAN's head is in models/gan/notegan.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pianoforge.config import LOWEST_PITCH, pitch_hz
from pianoforge.models.gan.magnitude import LOG_SCALE, N_KEYS, MagnitudeToImage

EXPERIMENTS: dict[str, str] = {
    "model.harmonic": "framegan's harmonic-template head (not shipped: broadband textures, not notes)",
    "model.patch_channels": "a 2-D patch branch in the frame critics (tried, not better)",
}
"""Model options that no preset uses."""
INHARMONICITY = 4e-4
"""Stretch of the initial partials: ``f_h = h f0 sqrt(1 + B h^2)`` (a mid-range piano string; learned after)."""


class HarmonicHead(MagnitudeToImage):
    """Features (B, C, W) -> image (B, 1, H, W) in [-1, 1] through nonnegative spectral templates.

    - activations ``a = sum_v softplus(l_v0) * softmax_k(l_vk)``: a conv1x1 gives ``voices`` x (K + 1)
      logits per frame; per voice one for its loudness and K for which templates sound, K = 88 *
      ``per_key`` + ``n_free``. The softmax makes the templates compete, so a voice holds about one note
      rather than a comb of all 88 (with independent activations every key rose and fell together:
      broadband bursts), and ``voices`` sets how many notes a frame can hold; the template logits' weights
      start 8x the default init, so from the first step each voice already picks a few keys;
    - templates ``T = exp(log_t)``: (K, H), linear magnitude, peak 1 at initialization. Key k's j-th
      template starts as partials at ``h f0_k sqrt(1 + B h^2)`` with amplitudes ``h^-(1 + j)`` (brighter
      first: attack and ring), each a Gaussian of 0.7 row; free templates start flat at 0.1 %;
    - magnitude ``m = exp(log_gain) * a^T T + exp(log_floor)``: (B, H, W), in the store's |STFT| units;
    - image ``clamp((log(m + eps) - mean) / (3 std), -1, 1)``: exactly the dataset's map from magnitude
      to image (``Normalizer.to_unit``), with the training statistics held as buffers.

    So the generator can only say which templates sound when and how loud; the sum is in the magnitude
    domain, where notes add, and every harmonic stack is a single channel. Everything but the
    normalization buffers is learned. ``log_t``, ``log_gain`` and ``log_floor`` are stored divided by
    :data:`LOG_SCALE` (use :meth:`templates`, :meth:`gain`, :meth:`floor`).
    """

    def __init__(self, channels: int, height: int, per_key: int, n_free: int, voices: int = 1) -> None:
        super().__init__(height)
        self.k = N_KEYS * int(per_key) + int(n_free)
        self.per_key, self.n_free, self.voices = int(per_key), int(n_free), int(voices)
        self.act = nn.Conv1d(channels, self.voices * (self.k + 1), 1)
        with torch.no_grad():
            w = self.act.weight.view(self.voices, self.k + 1, channels, 1)
            w[:, 1:] *= 8.0  # template logits with a std of a few units: a few keys win per frame
            self.act.bias.zero_()
            self.act.bias.view(self.voices, self.k + 1)[:, 0] = 0.55 - math.log(self.voices)  # sum ~ 1
        # log-domain parameters are stored divided by LOG_SCALE: Adam moves a parameter by about lr per
        # step whatever its scale, and 2e-4 nepers per step would leave templates, gain and floor where
        # they started (an earlier version did)
        self.log_t = nn.Parameter(torch.zeros(self.k, self.height))
        self.log_gain = nn.Parameter(torch.zeros(()))
        self.log_floor = nn.Parameter(torch.full((self.height,), -5.0 / LOG_SCALE))

    @torch.no_grad()
    def init_from_data(self, mean: np.ndarray, std: np.ndarray, row_hz: np.ndarray, log_eps: float) -> None:
        mean, std, row_hz = (np.asarray(a, dtype=np.float64) for a in (mean, std, row_hz))
        if not mean.shape == std.shape == row_hz.shape == (self.height,):
            raise ValueError(f"harmonic head: mean, std and row_hz must have shape ({self.height},)")
        self.set_moments(mean, std, log_eps)
        step = float(row_hz[1] - row_hz[0]) if self.height > 1 else 1.0
        t = np.full((self.k, self.height), 1e-3)
        for key in range(N_KEYS):
            f0 = pitch_hz(key + LOWEST_PITCH)
            h = np.arange(1, 64)
            f = h * f0 * np.sqrt(1.0 + INHARMONICITY * h**2)
            keep = f < row_hz[-1] + step
            for j in range(self.per_key):
                amp = h[keep] ** -(1.0 + j)
                d = (row_hz[None, :] - f[keep, None]) / (0.7 * step)
                spec = (amp[:, None] * np.exp(-0.5 * d**2)).sum(0)
                if spec.max() > 0:
                    t[key * self.per_key + j] = np.maximum(spec / spec.max(), 1e-6)
        self.log_t.copy_(torch.as_tensor(np.log(t) / LOG_SCALE))
        # one active template at a = 1 reaches the loudest bins' mean + 1.5 std; the floor sits half a std
        # below each bin's mean (most of a real clip's bins are background near the mean)
        self.log_gain.fill_(float(np.max(mean + 1.5 * std)) / LOG_SCALE)
        self.log_floor.copy_(torch.as_tensor((mean - 0.5 * std) / LOG_SCALE))

    def templates(self) -> torch.Tensor:
        """(K, H) linear-magnitude templates."""
        return torch.exp(LOG_SCALE * self.log_t)

    def gain(self) -> torch.Tensor:
        """() linear gain applied to the template sum."""
        return torch.exp(LOG_SCALE * self.log_gain)

    def floor(self) -> torch.Tensor:
        """(H,) linear-magnitude floor added to every frame."""
        return torch.exp(LOG_SCALE * self.log_floor)

    def activations(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, C, W) -> nonnegative template activations (B, K, W): per voice, the softplus
        loudness times a softmax over the templates; voices add."""
        b, _, w = x.shape
        logits = self.act(x).view(b, self.voices, self.k + 1, w)
        return (F.softplus(logits[:, :, :1]) * torch.softmax(logits[:, :, 1:], dim=2)).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mag = torch.einsum("bkw,kh->bhw", self.activations(x), self.templates()) * self.gain()
        return self.to_image(mag + self.floor()[:, None])
