"""Perform: a score-to-spectrogram network and the output representation it is trained in.

``PerformModel`` maps a frame encoding (B, T, channels) in [0, 1] (see ``pianoforge.midi.encoding``) to a
raw output (B, T, D) whose meaning is fixed by ``config.output``:

================  ===========  ===================================================================
output            D            meaning of the raw output
================  ===========  ===================================================================
``logmag``        bins         per-bin z-scored natural-log magnitude, log(|X| + eps) (the paper)
``logmag_el``     bins         the same for the equal-loudness weighted magnitude g(f)|X|; the
                               inverse 1/g(f) is applied at synthesis (the original code never did)
``complex``       2 * bins     real | imag of the STFT, each divided by the per-bin scale exp(mean)
``time``          hop          the waveform samples of each frame (the paper's time-domain baseline)
================  ===========  ===================================================================

Dataset statistics (per-bin mean/std of log-magnitude) and the equal-loudness gains live in buffers, so
a checkpoint alone rebuilds the whole mapping (nothing else is needed at inference).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge.audio.loudness import equal_loudness_gain
from pianoforge.audio.spectral import Normalizer, istft, log_magnitude, stft
from pianoforge.config import N_KEYS, AudioConfig, ScoreConfig, section_from_dict
from pianoforge.models.blocks import Recurrent, ResConv, TimeDistributedMLP
from pianoforge.models.note_synth import NoteSynthHead

OUTPUTS = ("logmag", "logmag_el", "complex", "time")
HEADS = ("dense", "notes")


@dataclass(frozen=True)
class PerformModelConfig:
    """Architecture: [dense stack] -> [residual convs] -> [recurrent core] -> dense output head."""

    in_channels: int
    output: str = "logmag"
    dense_layers: int = 0  # time-distributed dense layers before the core (the paper's final model: 4)
    dense_units: int = 256
    conv_layers: int = 0  # residual convolutions over time (dilations 1, 2, 4, ...)
    conv_channels: int = 256
    conv_kernel: int = 5
    rnn: str = "gru"  # "gru", "lstm" or "none"
    rnn_layers: int = 1
    rnn_units: int = 128
    bidirectional: bool = True
    post_dense_layers: int = 0  # dense layers between the core and the output head
    dropout: float = 0.0
    el_phon: float = 60.0  # loudness level of the ISO 226 contour used by ``logmag_el``
    # head "notes" (models/note_synth.py): learned per-key templates mixed by per-note excitations; the
    # layers above then form an optional residual trunk (note_residual) instead of the whole network
    head: str = "dense"
    note_rank: int = 8  # power templates per key
    note_hidden: int = 64  # width of the excitation MLP (shared by all keys)
    note_embed: int = 16  # learned key embedding fed to the MLP
    note_release_cutoff: float = 1.5  # seconds into its release after which a note is silent (FluidR3: < 1.25 s)
    note_residual: bool = False  # add a per-bin log-magnitude correction from the trunk
    note_table: bool = False  # add a learned per-key spectrum at every strike age (72 anchors, 3.3 M weights)
    note_channels: int = -1  # first note-state channel of the input (set from the score config)
    velocity_channels: int = -1  # first velocity channel of the input (-1: none; set from the score config)
    note_subframe: bool = False  # the note-state ages are sub-frame (set from score.subframe)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown model output {self.output!r} (one of {', '.join(OUTPUTS)})")
        if self.head not in HEADS:
            raise ValueError(f"unknown model head {self.head!r} (one of {', '.join(HEADS)})")
        if self.head == "notes":
            if self.output != "logmag":
                raise ValueError("model.head notes needs model.output logmag")
            if self.note_channels < 0 or self.note_channels + 3 * N_KEYS > self.in_channels:
                raise ValueError("model.head notes needs the score's note-state channels (score.note_state: true)")
            if self.note_rank < 1 or self.note_hidden < 1 or self.note_embed < 1 or self.note_release_cutoff <= 0:
                raise ValueError("model.note_rank, note_hidden, note_embed and note_release_cutoff must be > 0")
        if self.rnn not in ("gru", "lstm", "none"):
            raise ValueError(f"unknown rnn {self.rnn!r} (gru, lstm or none)")

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str | None = None) -> PerformModelConfig:
        """The ``model`` section, checked key by key (unknown keys, wrong types and bad values: ConfigError)."""
        return section_from_dict(cls, d, "model", origin)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PerformModel(nn.Module):
    def __init__(self, cfg: PerformModelConfig, audio: AudioConfig, normalizer: Normalizer | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio = audio
        bins = audio.n_bins
        self.out_dim = {"logmag": bins, "logmag_el": bins, "complex": 2 * bins, "time": audio.hop_length}[cfg.output]
        self.dense = TimeDistributedMLP(cfg.dense_layers, cfg.in_channels, cfg.dense_units, cfg.dropout)
        width = self.dense.out_dim
        if cfg.conv_layers:
            self.proj = nn.Linear(width, cfg.conv_channels) if width != cfg.conv_channels else nn.Identity()
            width = cfg.conv_channels
            self.convs = nn.Sequential(*[ResConv(width, cfg.conv_kernel, 2**i, cfg.dropout)
                                         for i in range(cfg.conv_layers)])
        else:
            self.proj, self.convs = nn.Identity(), nn.Identity()
        if cfg.rnn != "none":
            self.core: nn.Module = Recurrent(cfg.rnn, width, cfg.rnn_units, cfg.rnn_layers, cfg.bidirectional, cfg.dropout)
            width = self.core.out_dim
        else:
            self.core = nn.Identity()
        self.post = TimeDistributedMLP(cfg.post_dense_layers, width, cfg.dense_units, cfg.dropout)
        if cfg.head == "notes":
            n0 = cfg.note_channels
            slices = (slice(n0, n0 + N_KEYS), slice(n0 + N_KEYS, n0 + 2 * N_KEYS), slice(n0 + 2 * N_KEYS, n0 + 3 * N_KEYS))
            vel = slice(cfg.velocity_channels, cfg.velocity_channels + N_KEYS) if cfg.velocity_channels >= 0 else None
            self.head: nn.Module = NoteSynthHead(audio, slices, vel, cfg.note_rank, cfg.note_hidden, cfg.note_embed,
                                                 cfg.note_release_cutoff,
                                                 self.post.out_dim if cfg.note_residual else 0,
                                                 table=cfg.note_table, subframe=cfg.note_subframe)
        else:
            self.head = nn.Linear(self.post.out_dim, self.out_dim)
        norm = normalizer or Normalizer(np.full(bins, math.log(audio.log_eps) / 2), np.ones(bins))
        self.register_buffer("mean", torch.as_tensor(norm.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(norm.std, dtype=torch.float32))
        freqs = np.arange(bins) * audio.sample_rate / audio.n_fft
        self.register_buffer("el_gain", torch.as_tensor(equal_loudness_gain(freqs, cfg.el_phon), dtype=torch.float32))

    # -- network ------------------------------------------------------------------------------------
    def forward(self, score: torch.Tensor) -> torch.Tensor:
        """(B, T, in_channels) frame encoding -> (B, T, out_dim) raw output (see module docstring)."""
        if self.cfg.head == "notes":
            trunk = None
            if self.cfg.note_residual:
                trunk = self.post(self.core(self.convs(self.proj(self.dense(score)))))
            return (self.head(score, trunk) - self.mean) / self.std
        h = self.convs(self.proj(self.dense(score)))
        return self.head(self.post(self.core(h)))

    # -- representation -----------------------------------------------------------------------------
    def _el_offset(self) -> torch.Tensor:
        """(bins,) natural-log gain of the equal-loudness weighting."""
        return torch.log(self.el_gain)

    def target(self, spec: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The training target in output space.

        spec: (B, T, bins) natural-log magnitude (as stored); audio: (B, T * hop) waveform.
        Returns (B, T, out_dim).
        """
        out = self.cfg.output
        if out == "logmag":
            return (spec - self.mean) / self.std
        if out == "logmag_el":
            mag = (torch.exp(spec) - self.audio.log_eps).clamp_min(0)
            return (log_magnitude(mag * self.el_gain, self.audio.log_eps) - self.mean - self._el_offset()) / self.std
        if out == "complex":
            z = stft(audio, self.audio).transpose(1, 2)  # (B, T, bins)
            scale = torch.exp(self.mean)
            return torch.cat([z.real / scale, z.imag / scale], dim=-1)
        b, t = spec.shape[:2]
        return audio.reshape(b, t, self.audio.hop_length)

    def to_logmag(self, out: torch.Tensor) -> torch.Tensor:
        """Raw output (B, T, D) -> (B, T, bins) natural-log magnitude, unweighted and de-normalized."""
        kind = self.cfg.output
        eps = self.audio.log_eps
        if kind == "logmag":
            return out * self.std + self.mean
        if kind == "logmag_el":
            weighted = (torch.exp(out * self.std + self.mean + self._el_offset()) - eps).clamp_min(0)
            return log_magnitude(weighted / self.el_gain, eps)  # the inverse of the weighting
        if kind == "complex":
            return log_magnitude(self.to_complex(out).abs().transpose(1, 2), eps)
        return log_magnitude(stft(self.to_audio(out), self.audio).abs().transpose(1, 2), eps)

    def to_complex(self, out: torch.Tensor) -> torch.Tensor:
        """``complex`` raw output (B, T, 2*bins) -> complex STFT (B, bins, T)."""
        bins = self.audio.n_bins
        scale = torch.exp(self.mean)
        return torch.complex(out[..., :bins] * scale, out[..., bins:] * scale).transpose(1, 2)

    def to_audio(self, out: torch.Tensor) -> torch.Tensor:
        """Waveform (B, T * hop) for the outputs that carry phase (``complex``, ``time``)."""
        if self.cfg.output == "time":
            return out.reshape(out.shape[0], -1)
        if self.cfg.output == "complex":
            return istft(self.to_complex(out), self.audio)
        raise ValueError(f"output {self.cfg.output!r} has no phase; use a phase reconstruction method")

    @property
    def carries_phase(self) -> bool:
        return self.cfg.output in ("complex", "time")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_perform_model(model_dict: dict[str, Any], audio: AudioConfig, in_channels: int,
                        normalizer: Normalizer | None = None, score: ScoreConfig | None = None) -> PerformModel:
    """Build from a preset's ``model`` section (``in_channels`` comes from the score config; ``score``, when
    given, tells the ``notes`` head where the note-state and velocity channels are)."""
    d = {k: v for k, v in model_dict.items() if k != "kind"}
    d["in_channels"] = in_channels
    if score is not None and d.get("head") == "notes":
        from pianoforge.midi.encoding import VELOCITY, note_state_slices

        ns = note_state_slices(score)
        d["note_channels"] = ns[0].start if ns else -1
        d["velocity_channels"] = VELOCITY.start if score.velocity else -1
        d["note_subframe"] = score.subframe
    return PerformModel(PerformModelConfig.from_dict(d), audio, normalizer)
