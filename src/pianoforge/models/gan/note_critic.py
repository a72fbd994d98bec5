"""NoteGAN's second critic: it judges the *score* a generator plays, not its sound.

The image critic sees a spectrogram, where a clip of three slow chords and one of running sixteenths can
both look plausible frame by frame; measured, the shipped NoteGAN played 2.6-3.6 notes/s against the real
clips' 11.1. The store keeps each training clip's score, so the real strikes are known exactly: this critic
compares the generator's strike roll with them.

- input: a strike roll (B, 88, W) in [0, 1): per key and frame ``u(x) = x / (x + ROLL_KNEE)`` of the strike
  level ``x`` (real clips: velocity / :data:`ROLL_VELOCITY`, the dictionary's velocity, at each onset frame;
  NoteGAN: the level of its struck notes, summed over hold lengths, in dictionary-note units). The knee
  makes it mostly a question of *where* notes are struck; how loud is left to the image critic.
- network: the roll as a (B, 1, 88, W) image, four stride-2 4x4 2-D convolutions (pitch x time, so chord
  shapes and intervals are learned once at every transposition), LeakyReLU 0.2, minibatch stddev, mean over
  pitch, a linear layer over time -> (B,) raw score; spectral normalization on every layer (hinge loss).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from pianoforge.models.gan.stylegan import minibatch_stddev

ROLL_KNEE = 0.1
"""Strike level at which the critic's input reaches 0.5 (1 = a dictionary note)."""
ROLL_VELOCITY = 80.0
"""MIDI velocity of a dictionary note (``model.note_velocity`` of the notegan presets)."""


def compress_roll(levels: torch.Tensor) -> torch.Tensor:
    """Strike levels (..., 88, W) >= 0 -> the critic's input in [0, 1)."""
    levels = levels.clamp_min(0.0)
    return levels / (levels + ROLL_KNEE)


class NoteCritic(nn.Module):
    """Strike roll (B, 88, W) in [0, 1) -> raw score (B,)."""

    def __init__(self, frames: int, channels: int = 32, group: int = 4) -> None:
        super().__init__()
        c = int(channels)
        widths = [1, c, 2 * c, 4 * c, 4 * c]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.group = int(group)
        w0 = int(frames)
        for _ in range(4):
            w0 = (w0 + 2 - 4) // 2 + 1
        self.head = spectral_norm(nn.Linear((4 * c + 1) * w0, 1))

    def forward(self, roll: torch.Tensor) -> torch.Tensor:
        h = self.net(roll.unsqueeze(1))  # (B, 4c, 88 / 16, W / 16)
        h = minibatch_stddev(h, self.group).mean(dim=2)  # (B, 4c + 1, W / 16)
        return self.head(h.flatten(1)).squeeze(1)
