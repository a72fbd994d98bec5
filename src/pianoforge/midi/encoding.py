"""Frame encoding of a :class:`~pianoforge.midi.score.Score` and its decoder.

Output of :func:`encode`: float32 (frames, channels) with the layout of
:class:`~pianoforge.config.ScoreConfig` — ``[0:88]`` struck, ``[88:176]`` held, ``[176:264]`` velocity
(if enabled), then 88 note-age and 88 release-age envelopes (if enabled), then 3 x 88 note-state channels (if
enabled: strike age, sounding-release age, last velocity), last channel sustain pedal (if enabled). Frame ``k`` covers ``[k, k + 1) / frame_rate``
seconds; an event at time ``t`` falls in frame ``floor(t * frame_rate)``.

Differences from the Lan et al. code, on purpose: onsets come from the note list, so a key re-struck with
no gap DOES get an onset (diffing the piano roll missed it); velocity and the sustain pedal are kept; the
channels are grouped, not interleaved.
"""

from __future__ import annotations

import math

import numpy as np

from pianoforge.config import (
    ENVELOPE_ATTACK_S,
    ENVELOPE_RELEASE_S,
    LOWEST_PITCH,
    N_KEYS,
    NOTE_AGE_S,
    NOTE_RELEASE_S,
    ScoreConfig,
)
from pianoforge.midi.score import Note, Score, make_score

ONSET = slice(0, N_KEYS)
HELD = slice(N_KEYS, 2 * N_KEYS)
VELOCITY = slice(2 * N_KEYS, 3 * N_KEYS)


def envelope_slices(cfg: ScoreConfig) -> tuple[slice, slice] | None:
    """(note-age, release-age) channel slices, or None when the config has no envelopes."""
    if not cfg.envelopes:
        return None
    start = 2 * N_KEYS + (N_KEYS if cfg.velocity else 0)
    return slice(start, start + N_KEYS), slice(start + N_KEYS, start + 2 * N_KEYS)


def envelopes(onset: np.ndarray, held: np.ndarray, frame_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-key time-since-event envelopes from whole-piece (frames, 88) struck and held channels.

    ``attack[f, k] = exp(-(f - last onset of k) / (ENVELOPE_ATTACK_S * frame_rate))`` while k is held, else 0;
    ``release[f, k] = exp(-(f - last held frame of k) / (ENVELOPE_RELEASE_S * frame_rate))`` after k was
    released (until it is held again), else 0. Both in (0, 1]. They tell a model how long ago a note began
    or ended, which a fixed-length training window cannot see for notes begun before the window: computed
    over the whole piece, so a window cut anywhere carries the true ages.
    """
    t = onset.shape[0]
    idx = np.arange(t, dtype=np.float64)[:, None]
    held_b = held > 0.5
    start = (onset > 0.5) | (held_b & ~np.vstack([np.zeros((1, onset.shape[1]), bool), held_b[:-1]]))
    last_on = np.maximum.accumulate(np.where(start, idx, -np.inf), axis=0)
    attack = np.where(held_b & np.isfinite(last_on), np.exp(-(idx - last_on) / (ENVELOPE_ATTACK_S * frame_rate)), 0.0)
    last_held = np.maximum.accumulate(np.where(held_b, idx, -np.inf), axis=0)
    rel = np.where(~held_b & np.isfinite(last_held),
                   np.exp(-(idx - last_held) / (ENVELOPE_RELEASE_S * frame_rate)), 0.0)
    return attack.astype(np.float32), rel.astype(np.float32)


def note_state_slices(cfg: ScoreConfig) -> tuple[slice, slice, slice] | None:
    """(strike-age, release-age, velocity) note-state channel slices, or None when the config has none."""
    if not cfg.note_state:
        return None
    start = 2 * N_KEYS + (N_KEYS if cfg.velocity else 0) + (2 * N_KEYS if cfg.envelopes else 0)
    return tuple(slice(start + i * N_KEYS, start + (i + 1) * N_KEYS) for i in range(3))  # type: ignore[return-value]


def note_state(score: Score, frame_rate: float, n_frames: int,
               subframe: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per key, what the key's latest note is doing in every frame: three (n_frames, 88) float32 arrays.

    - ``age[f, k] = exp(-(f - a) / (NOTE_AGE_S * frame_rate))`` from the frame ``a`` of the key's latest
      strike until its next strike (through the release: unlike the envelopes, it does not stop when the key
      goes up), 0 before the key's first strike;
    - ``release[f, k] = exp(-(f - e) / (NOTE_RELEASE_S * frame_rate))`` from the frame ``e`` where that note
      stops *sounding* (its key is up and the sustain pedal does not hold it,
      :meth:`~pianoforge.midi.score.Score.with_pedal_extension`) until the next strike; 0 while it sounds;
    - ``velocity[f, k]``: that note's velocity / 127, from its strike until the next strike.

    Computed over the whole piece, so a window cut anywhere knows each sounding note's age, loudness and
    release, which is all a sampled piano's note depends on. Ages are exact to a frame: a model reads them
    back as ``-tau * log(channel)``. With ``subframe`` (:attr:`ScoreConfig.subframe`) the ages count from
    one frame before the exact strike (release) time instead of from its frame, ``f - a + 1 - frac`` frames
    with ``frac = start * frame_rate - a`` in [0, 1): the strike frame's age is in (0, 1] frame and tells
    where in the frame the note began (a shift within one hop changes a note's spectrogram by 2.5-5.3 dB).
    """
    age = np.zeros((n_frames, N_KEYS), dtype=np.float64)
    rel = np.zeros((n_frames, N_KEYS), dtype=np.float64)
    vel = np.zeros((n_frames, N_KEYS), dtype=np.float32)
    ta, tr = NOTE_AGE_S * frame_rate, NOTE_RELEASE_S * frame_rate
    for k, a, nxt, e, v, sa, se in note_segments(score, frame_rate, n_frames, subframe):
        idx = np.arange(a, nxt, dtype=np.float64)
        age[a:nxt, k] = np.exp(-(idx - a + sa) / ta)
        vel[a:nxt, k] = v / 127.0
        rel[e:nxt, k] = np.exp(-(idx[e - a:] - e + se) / tr)
    return age.astype(np.float32), rel.astype(np.float32), vel


def note_segments(score: Score, frame_rate: float, n_frames: int,
                  subframe: bool = False) -> list[tuple[int, int, int, int, int, float, float]]:
    """The notes that :func:`note_state` lays out, one row per (key, strike): ``(key, a, nxt, e, velocity,
    age shift, release shift)`` with ``a`` the strike frame, ``nxt`` the key's next strike frame (or
    ``n_frames``), ``e`` in ``[a + 1, nxt]`` the frame where it stops sounding, and the shifts (frames)
    added to ``f - a`` and ``f - e``: 0 on the frame grid, ``1 - frac`` of the exact time with ``subframe``
    (1 where ``e`` was moved off the note's end frame). Two strikes in one frame: the later one wins."""
    by_key: dict[int, list[tuple[int, int, int, float, float]]] = {}
    for n in score.with_pedal_extension().notes:
        a = _frame(n.start, frame_rate)
        if a < n_frames:
            by_key.setdefault(n.pitch - LOWEST_PITCH, []).append(
                (a, max(a + 1, _frame(n.end, frame_rate)), n.velocity, n.start * frame_rate, n.end * frame_rate))
    rows = []
    for k, notes in by_key.items():
        notes.sort()
        for i, (a, e, v, a_exact, e_exact) in enumerate(notes):
            nxt = notes[i + 1][0] if i + 1 < len(notes) else n_frames
            if nxt <= a:
                continue
            e = min(max(e, a + 1), nxt)
            sa = se = 0.0
            if subframe:
                sa = min(max(a + 1.0 - a_exact, 1e-3), 1.0)
                se = min(max(e + 1.0 - e_exact, 1e-3), 1.0)
            rows.append((k, a, nxt, e, v, sa, se))
    return rows


def pedal_channel(cfg: ScoreConfig) -> int | None:
    """Index of the pedal channel, or None."""
    return cfg.n_channels - 1 if cfg.pedal else None


def frames_for(seconds: float, frame_rate: float) -> int:
    """Number of frames needed to hold ``seconds`` of music."""
    return int(math.ceil(seconds * frame_rate - 1e-9))


def _frame(t: float, frame_rate: float) -> int:
    return int(math.floor(t * frame_rate + 1e-9))


def encode(score: Score, cfg: ScoreConfig, frame_rate: float, n_frames: int | None = None) -> np.ndarray:
    """Score -> (n_frames, cfg.n_channels) float32 in [0, 1]; events past ``n_frames`` are cut."""
    if cfg.pedal_extend:
        score = score.with_pedal_extension()
    if n_frames is None:
        n_frames = max(1, frames_for(score.end_time, frame_rate))
    x = np.zeros((n_frames, cfg.n_channels), dtype=np.float32)
    held_until: dict[int, int] = {}  # per key: end frame of the notes encoded so far (they come by start)
    for n in score.notes:
        k = n.pitch - LOWEST_PITCH
        a = _frame(n.start, frame_rate)
        b = max(a + 1, _frame(n.end, frame_rate))  # a note always holds at least its onset frame
        if a >= n_frames:
            continue
        b = min(b, n_frames)
        x[a, ONSET.start + k] = 1.0
        x[a:b, HELD.start + k] = 1.0
        if cfg.velocity:
            # a key re-struck while an earlier note still holds it: the new velocity holds until the key is
            # released (never reverts to the earlier strike's), as decode() reads it back
            x[a:max(b, held_until.get(k, 0)), VELOCITY.start + k] = n.velocity / 127.0
        held_until[k] = max(b, held_until.get(k, 0))
    env = envelope_slices(cfg)
    if env is not None:
        x[:, env[0]], x[:, env[1]] = envelopes(x[:, ONSET], x[:, HELD], frame_rate)
    ns = note_state_slices(cfg)
    if ns is not None:
        x[:, ns[0]], x[:, ns[1]], x[:, ns[2]] = note_state(score, frame_rate, n_frames, cfg.subframe)
    pc = pedal_channel(cfg)
    if pc is not None:
        for s, e in score.pedal:
            a = _frame(s, frame_rate)
            b = min(max(a + 1, _frame(e, frame_rate)), n_frames)
            if a < n_frames:
                x[a:b, pc] = 1.0
    return x


def decode(x: np.ndarray, cfg: ScoreConfig, frame_rate: float, threshold: float = 0.5,
           default_velocity: int = 80) -> Score:
    """(frames, channels) -> Score, quantized to frames. A note starts at a struck frame (or where held
    begins without one) and ends where held stops or the key is struck again."""
    if x.ndim != 2 or x.shape[1] != cfg.n_channels:
        raise ValueError(f"expected (frames, {cfg.n_channels}) encoding, got {x.shape}")
    onset = x[:, ONSET] >= threshold
    held = x[:, HELD] >= threshold
    t = x.shape[0]
    notes: list[Note] = []
    for k in range(N_KEYS):
        start = None
        for f in range(t + 1):
            on = f < t and onset[f, k]
            h = f < t and (held[f, k] or on)
            if start is not None and (not h or on):
                notes.append(_note(x, cfg, k, start, f, frame_rate, default_velocity))
                start = None
            if start is None and h:
                start = f
    pedal = []
    pc = pedal_channel(cfg)
    if pc is not None:
        down = np.concatenate([[False], x[:, pc] >= threshold, [False]])
        edges = np.flatnonzero(np.diff(down.astype(np.int8)))
        pedal = [(a / frame_rate, b / frame_rate) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return make_score(notes, pedal)


def _note(x: np.ndarray, cfg: ScoreConfig, k: int, a: int, b: int, fr: float, default_velocity: int) -> Note:
    vel = default_velocity
    if cfg.velocity:
        v = float(x[a, VELOCITY.start + k])
        if v > 0:
            vel = int(min(127, max(1, round(v * 127))))
    return Note(LOWEST_PITCH + k, a / fr, b / fr, vel)


def piano_roll(x: np.ndarray) -> np.ndarray:
    """(frames, channels) encoding -> (88, frames) held roll, for plots."""
    return x[:, HELD].T
