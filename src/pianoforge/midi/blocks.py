"""Frame encoding of any range of frames straight from the note list, equal to :func:`encode` sliced.

A 60-minute piece is 225 000 frames; its whole encoding (441-705 channels of float32) would take 0.4-0.6 GB.
:class:`BlockEncoder` prepares small per-note tables once (O(notes)) and then encodes ``[start, stop)`` on
demand, in any order. The channels that carry whole-piece state get that state at ``start`` from the tables:
the envelopes need each key's last onset and last held frame before ``start`` (found by binary search),
the note-state channels the key's current note, the velocity channel the span each strike holds.
``tests/test_encoding.py`` checks ``block(a, b) == encode(...)[a:b]`` exactly, for every channel layout.
"""

from __future__ import annotations

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
from pianoforge.midi.encoding import (
    HELD,
    ONSET,
    VELOCITY,
    _frame,
    envelope_slices,
    note_segments,
    note_state_slices,
    pedal_channel,
)
from pianoforge.midi.score import Score


class BlockEncoder:
    """``BlockEncoder(score, cfg, frame_rate, n_frames).block(a, b)`` == ``encode(score, cfg, frame_rate,
    n_frames)[a:b]``, as float32 (b - a, channels), without the whole array. ``envelopes=False`` leaves the
    envelope channels at 0, for a model that does not read them (the numpy notes head: 4 % of a render)."""

    def __init__(self, score: Score, cfg: ScoreConfig, frame_rate: float, n_frames: int,
                 envelopes: bool = True) -> None:
        self.cfg, self.fr, self.n = cfg, frame_rate, int(n_frames)
        self.with_envelopes = bool(envelopes)
        if cfg.pedal_extend:
            score = score.with_pedal_extension()
        rows = []  # (key, onset frame, held end, velocity span end, velocity) in the note list's order
        held_until: dict[int, int] = {}
        for note in score.notes:
            k = note.pitch - LOWEST_PITCH
            a = _frame(note.start, frame_rate)
            if a >= self.n:
                continue
            b = min(max(a + 1, _frame(note.end, frame_rate)), self.n)
            rows.append((k, a, b, max(b, held_until.get(k, 0)), note.velocity / 127.0))
            held_until[k] = max(b, held_until.get(k, 0))
        t = np.array(rows, dtype=np.float64).reshape(-1, 5)
        self.key, self.a, self.b, self.vb = (t[:, i].astype(np.int64) for i in range(4))
        self.vel = t[:, 4].astype(np.float32)
        self._prepare_history()
        self.pedal = [(a, min(max(a + 1, _frame(e, frame_rate)), self.n))
                      for a, e in ((_frame(s, frame_rate), e) for s, e in score.pedal) if a < self.n]
        self.segments = self._note_segments(score) if cfg.note_state else None

    def _prepare_history(self) -> None:
        """Per key: sorted onset frames and the merged held intervals (for the state at a block start)."""
        self.onsets, self.spans = [], []
        for k in range(N_KEYS):
            sel = self.key == k
            a, b = self.a[sel], self.b[sel]
            self.onsets.append(np.unique(a))
            merged: list[list[int]] = []
            for s, e in sorted(zip(a.tolist(), b.tolist(), strict=True)):
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            self.spans.append(np.array(merged, dtype=np.int64).reshape(-1, 2))

    def _note_segments(self, score: Score) -> np.ndarray:
        """(segments, 7) float64 rows (key, strike frame a, next strike nxt, sounding end e, velocity, age
        shift, release shift) of :func:`pianoforge.midi.encoding.note_segments`."""
        seg = note_segments(score, self.fr, self.n, self.cfg.subframe)
        return np.array(seg, dtype=np.float64).reshape(-1, 7)

    def block(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, channels) float32: frames ``[start, stop)`` of the whole-piece encoding."""
        start, stop = max(0, int(start)), min(self.n, int(stop))
        m = max(0, stop - start)
        x = np.zeros((m, self.cfg.n_channels), dtype=np.float32)
        if m == 0:
            return x
        sel = np.flatnonzero((self.a < stop) & (np.maximum(self.b, self.vb) > start))
        for i in sel:  # in the note list's order: later strikes overwrite, as in encode()
            k, a, b = self.key[i], self.a[i], self.b[i]
            if a >= start:
                x[a - start, ONSET.start + k] = 1.0
            x[max(a, start) - start:max(b - start, 0), HELD.start + k] = 1.0
            if self.cfg.velocity:
                x[max(a, start) - start:max(self.vb[i] - start, 0), VELOCITY.start + k] = self.vel[i]
        env = envelope_slices(self.cfg) if self.with_envelopes else None
        if env is not None:
            x[:, env[0]], x[:, env[1]] = self._envelopes(x[:, ONSET], x[:, HELD], start)
        ns = note_state_slices(self.cfg)
        if ns is not None:
            x[:, ns[0]], x[:, ns[1]], x[:, ns[2]] = self._note_state(start, stop)
        pc = pedal_channel(self.cfg)
        if pc is not None:
            for a, b in self.pedal:
                if a < stop and b > start:
                    x[max(a, start) - start:b - start, pc] = 1.0
        return x

    def _state_before(self, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per key at frame ``start``: last start frame and last held frame before it (-inf: none), and whether
        frame ``start - 1`` is held."""
        last_on = np.full(N_KEYS, -np.inf)
        last_held = np.full(N_KEYS, -np.inf)
        held_prev = np.zeros(N_KEYS, bool)
        for k in range(N_KEYS):
            on, sp = self.onsets[k], self.spans[k]
            j = np.searchsorted(on, start) - 1  # onsets are interval starts too (every note starts held)
            if j >= 0:
                last_on[k] = on[j]
            j = np.searchsorted(sp[:, 0], start) - 1
            if j >= 0:
                last_held[k] = min(sp[j, 1], start) - 1
                held_prev[k] = sp[j, 1] >= start
        return last_on, last_held, held_prev

    def _envelopes(self, onset: np.ndarray, held: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`pianoforge.midi.encoding.envelopes` of the block, continued from the state at ``start``."""
        last_on0, last_held0, held_prev = self._state_before(start)
        t = onset.shape[0]
        idx = np.arange(start, start + t, dtype=np.float64)[:, None]
        held_b = held > 0.5
        begins = (onset > 0.5) | (held_b & ~np.vstack([held_prev[None], held_b[:-1]]))
        last_on = np.maximum.accumulate(np.vstack([last_on0[None], np.where(begins, idx, -np.inf)]), axis=0)[1:]
        attack = np.where(held_b & np.isfinite(last_on),
                          np.exp(-(idx - last_on) / (ENVELOPE_ATTACK_S * self.fr)), 0.0)
        last_held = np.maximum.accumulate(np.vstack([last_held0[None], np.where(held_b, idx, -np.inf)]), axis=0)[1:]
        rel = np.where(~held_b & np.isfinite(last_held),
                       np.exp(-(idx - last_held) / (ENVELOPE_RELEASE_S * self.fr)), 0.0)
        return attack.astype(np.float32), rel.astype(np.float32)

    def _note_state(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`pianoforge.midi.encoding.note_state` of frames ``[start, stop)``."""
        m = stop - start
        age = np.zeros((m, N_KEYS), dtype=np.float64)
        rel = np.zeros((m, N_KEYS), dtype=np.float64)
        vel = np.zeros((m, N_KEYS), dtype=np.float32)
        seg = self.segments
        assert seg is not None
        ta, tr = NOTE_AGE_S * self.fr, NOTE_RELEASE_S * self.fr
        for row in seg[(seg[:, 1] < stop) & (seg[:, 2] > start)]:
            k, a, nxt, e, v = (int(x) for x in row[:5])
            sa, se = float(row[5]), float(row[6])
            lo, hi = max(a, start), min(nxt, stop)
            idx = np.arange(lo, hi, dtype=np.float64)
            age[lo - start:hi - start, k] = np.exp(-(idx - a + sa) / ta)
            vel[lo - start:hi - start, k] = v / 127.0
            if e < hi:
                r0 = max(e, lo)
                rel[r0 - start:hi - start, k] = np.exp(-(idx[r0 - lo:] - e + se) / tr)
        return age.astype(np.float32), rel.astype(np.float32), vel
