"""A measured piano note dictionary: every key's |STFT| over its first frames, and a low-rank factorization.

Used by FrameGAN's note head (``models/gan/frame.py``, ``model.head=notes``): the generator says which keys
are struck when and how hard, and the dictionary says what a struck key sounds like. The notes come from the
same renderer and soundfont as the training data (:func:`pianoforge.audio.render.render_score`), so the
dictionary is a measurement of the instrument, not a guess.

Shapes and units:

- :func:`render_note_dictionary` -> (88, bins, frames) float32 linear ``|STFT|`` (store units: torch.stft
  of FluidSynth's float output, no scaling), key 0 = A0 (MIDI 21); frame 0 is the onset's frame;
- :func:`factorize_notes` -> spectra (N, rank, bins) and envelopes (N, rank, frames), nonnegative, with
  ``dictionary[k] ~= spectra[k].T @ envelopes[k]``; each envelope peaks at 1 (N notes: 88 per hold length).

Why a hand-written NMF: scikit-learn is only in the ``eval`` extra, and the 88 problems are 256 x 100
matrices that ~200 multiplicative updates (Lee & Seung 2001, KL divergence, which weighs quiet partials
as the log-magnitude image does) fit in a second.
"""

from __future__ import annotations

import numpy as np
import torch

from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import magnitude, stft
from pianoforge.config import AudioConfig, RenderConfig
from pianoforge.midi.score import Note, make_score

N_KEYS = 88
LOWEST_MIDI = 21
GAP_SECONDS = 2.0
"""Silence rendered after each held note before the next key is struck (its release dies away)."""


def render_note_dictionary(audio: AudioConfig, render: RenderConfig, frames: int,
                           velocity: int = 80, hold: int | None = None) -> np.ndarray:
    """(88, bins, frames) linear |STFT| of each key struck at ``velocity``, held ``hold`` frames (default:
    all ``frames``) and then released, so the rest is FluidSynth's own release (damper) tail.

    One FluidSynth call renders the 88 notes one after another, ``GAP_SECONDS`` apart; each key's window
    starts at its onset sample, so frame 0 is the onset's (centred) frame. The last eighth of the frames
    fade out with a half cosine, so a dictionary note ends softly rather than at a cliff.
    """
    sr, hop = int(audio.sample_rate), int(audio.hop_length)
    held = (frames if hold is None else min(int(hold), frames)) * hop / sr
    step = int(np.ceil((frames * hop / sr + GAP_SECONDS) * sr / hop)) * hop  # onsets on frame boundaries
    notes = [Note(LOWEST_MIDI + k, k * step / sr, k * step / sr + held, int(velocity)) for k in range(N_KEYS)]
    x = render_score(make_score(notes, source="note dictionary"), sr, render, N_KEYS * step)
    segs = torch.from_numpy(x.reshape(N_KEYS, step)[:, : frames * hop].copy())
    mag = magnitude(stft(segs, audio)).numpy().astype(np.float64)  # (88, bins, frames)
    n_fade = max(1, frames // 8)
    fade = np.ones(frames)
    fade[-n_fade:] = 0.5 * (1.0 + np.cos(np.pi * (np.arange(n_fade) + 1) / n_fade))
    return (mag * fade).astype(np.float32)


def factorize_notes(dictionary: np.ndarray, rank: int, iterations: int = 200,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rank-``rank`` KL-NMF of each note: (N, bins, frames) -> spectra (N, rank, bins), envelopes
    (N, rank, frames), nonnegative; envelopes scaled to peak 1 (spectra carry the level)."""
    d = np.asarray(dictionary, dtype=np.float64)
    n, bins, frames = d.shape
    rng = np.random.default_rng(seed)
    spectra = np.zeros((n, rank, bins))
    envelopes = np.zeros((n, rank, frames))
    tiny = 1e-12
    for k in range(n):
        v = d[k] + tiny
        scale = v.mean()
        w = rng.uniform(0.5, 1.5, (bins, rank)) * scale
        h = rng.uniform(0.5, 1.5, (rank, frames))
        for _ in range(iterations):
            w *= ((v / (w @ h + tiny)) @ h.T) / (h.sum(1)[None, :] + tiny)
            h *= (w.T @ (v / (w @ h + tiny))) / (w.sum(0)[:, None] + tiny)
        peak = h.max(1, keepdims=True) + tiny
        spectra[k], envelopes[k] = (w * peak.T).T, h / peak
    return spectra.astype(np.float32), envelopes.astype(np.float32)


def reconstruct(spectra: np.ndarray, envelopes: np.ndarray) -> np.ndarray:
    """spectra (N, R, bins), envelopes (N, R, frames) -> (N, bins, frames)."""
    return np.einsum("krb,krt->kbt", spectra, envelopes)
