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
from typing import Any

import numpy as np
import torch
from torch import nn

from pianoforge.audio.loudness import equal_loudness_gain
from pianoforge.audio.spectral import Normalizer, istft, log_magnitude, stft
from pianoforge.config import N_KEYS, AudioConfig, ScoreConfig
from pianoforge.models.blocks import Recurrent, ResConv, TimeDistributedMLP
from pianoforge.models.note_synth import NoteSynthHead
from pianoforge.models.perform_config import HEADS as HEADS  # the config lives in a torch-free module
from pianoforge.models.perform_config import OUTPUTS as OUTPUTS
from pianoforge.models.perform_config import PerformModelConfig


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
