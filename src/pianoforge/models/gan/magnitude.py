"""Heads that sum sounds in linear magnitude and map the sum to the GAN image with the dataset's own map.

:class:`MagnitudeToImage` is the base of NoteGAN's note head (models/gan/notegan.py) and the experimental
harmonic head (models/gan/experimental.py): a linear magnitude (B, H, W) becomes the image (B, 1, H, W) in
[-1, 1] by ``Normalizer.to_unit(log(m + eps))``, the training moments held as buffers (exported with the
weights), so the inverse chain of ``improvise`` is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pianoforge.audio.spectral import GAN_CLIP_STD, log_magnitude

N_KEYS = 88
"""Piano keys A0 (MIDI 21, 27.5 Hz) .. C8 (MIDI 108, 4186 Hz)."""
LOG_SCALE = 50.0
"""Log-domain parameters of these heads are stored / LOG_SCALE (a per-parameter learning-rate multiplier:
Adam moves a parameter by about lr per step whatever its scale)."""


class MagnitudeToImage(nn.Module):
    """Linear magnitude (B, H, W) -> image (B, 1, H, W) in [-1, 1], with buffers ``mean``, ``std`` (H,)
    and ``eps`` (set by :meth:`set_moments`)."""

    def __init__(self, height: int) -> None:
        super().__init__()
        self.height = int(height)
        self.register_buffer("mean", torch.zeros(self.height))
        self.register_buffer("std", torch.ones(self.height))
        self.register_buffer("eps", torch.tensor(1e-5))

    @torch.no_grad()
    def set_moments(self, mean: np.ndarray, std: np.ndarray, log_eps: float) -> None:
        self.mean.copy_(torch.as_tensor(mean)), self.std.copy_(torch.as_tensor(std))
        self.eps.fill_(float(log_eps))

    def to_image(self, mag: torch.Tensor) -> torch.Tensor:
        z = (log_magnitude(mag, self.eps) - self.mean[:, None]) / self.std[:, None]
        return (z.clamp(-GAN_CLIP_STD, GAN_CLIP_STD) / GAN_CLIP_STD).unsqueeze(1)
