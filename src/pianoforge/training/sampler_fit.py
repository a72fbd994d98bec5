"""Fitting the learned sampler (:mod:`pianoforge.models.sampler`) to a store's training audio.

The sampler's audio is linear in its waveforms once the velocity curves and the release envelope are fixed,
and linear in the curves once the waveforms are fixed, so the fit alternates least-squares solves instead of
running gradient descent:

1. **waves**: preconditioned conjugate gradients on the normal equations ``A^T A x = A^T y`` (``A``: the
   training notes placed at their strikes, ``y``: the training audio), Jacobi-preconditioned by each
   (key, sample since strike)'s summed squared weight, with a small ridge so that a sample no note reaches
   stays 0. Each iteration is one pass that places every note and one that gathers the residual under it.
2. **velocity curves**: the exact normal equations of the 2K knot values (loudness and timbre), per piece.
3. **release envelope**: Gauss-Newton steps on its anchors, ignoring the overlap of different notes'
   release tails in the curvature (the gradient is exact).

Optionally (``train.sampler_subf0_after``) step 1 solves inside the waveforms with no late energy under their
key's fundamental (:class:`pianoforge.training.sampler_late.SubFundamentalProjection`), and after the last
round :func:`pianoforge.training.sampler_late.monotone_late` limits the late part to decaying bins.

**The loss** is the squared error of the waveform, optionally weighted in time (``train.sampler_weight_power``
p > 0, :func:`loudness_weight`): each sample's squared error is divided by the training audio's local power
(a 128 ms moving average, floored at ``train.sampler_weight_floor`` of the piece's mean power) to the power p.
At p = 1 the fit minimises the *relative* error at every moment, so the quiet late part of a held note counts
as much as the loud attack of the chord after it; at p = 0 (the shipped v4) a loud strike outweighs it by
orders of magnitude. The weight is linear-least-squares-compatible (``A^T W A x = A^T W y``), so every step
below uses it.

Every solve uses only the ``train`` split; the validation split's audio error is logged after each round.
The loss is the squared error of the waveform, which is the right loss only where the training audio is
sample-accurate and repeatable (a synthesizer; for recordings the waveforms become the average strike).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.midi.score import load_score
from pianoforge.models.sampler import NoteEvents, NoteSampler, curve, knot_weights
from pianoforge.training.sampler_late import SubFundamentalProjection
from pianoforge.training.sampler_release import ReleaseFit

log = logging.getLogger(__name__)


@dataclass
class Piece:
    piece_id: str
    events: NoteEvents
    audio: np.ndarray  # (samples,) float32
    weight: np.ndarray | None = None  # (samples,) float32 >= 0: each sample's squared-error weight; None: 1


def loudness_weight(audio: np.ndarray, power: float, floor: float = 1e-3, window: int = 2048) -> np.ndarray | None:
    """Per sample of ``audio`` (samples,): ``((P(t) + floor * mean P) / mean P) ** -power``, with ``P`` the
    ``window``-sample moving average of ``audio ** 2`` (centred). ``power`` 0: None (the plain squared error).
    Float32, mean power of a piece's loud parts -> about 1, its silences -> ``floor ** -power``."""
    if power == 0:
        return None
    x = np.asarray(audio, np.float64) ** 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    n = len(x)
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) + window - window // 2, 0, n)
    P = (c[hi] - c[lo]) / np.maximum(hi - lo, 1)
    mean = max(float(x.mean()), 1e-20)
    return (((P + floor * mean) / mean) ** -power).astype(np.float32)


def load_pieces(store: FeatureStore, split: str, model: NoteSampler, weight_power: float = 0.0,
                weight_floor: float = 1e-3) -> list[Piece]:
    """The split's pieces as note events (from their MIDI, read as the store read it), float32 audio and its
    :func:`loudness_weight` (None at ``weight_power`` 0)."""
    out = []
    for meta in store.pieces(split):
        score = load_score(meta["midi"], store.preset.data.tracks, store.preset.data.programs)
        audio = np.asarray(store.arrays(meta["piece_id"]).audio, dtype=np.float32)
        out.append(Piece(meta["piece_id"], model.events(score), audio,
                         loudness_weight(audio, weight_power, weight_floor)))
    return out


class SamplerFit(ReleaseFit):
    """Alternating least squares of a :class:`NoteSampler` on ``pieces`` (step 3, the release envelopes, in
    :class:`pianoforge.training.sampler_release.ReleaseFit`)."""

    def __init__(self, model: NoteSampler, pieces: list[Piece], ridge: float = 1e-3) -> None:
        self.m = model
        self.pieces = pieces
        self.ridge = ridge
        self.L = model.lengths["waves"]
        self.Lc = model.lengths["timbre"]
        K, n_a = model.release.shape
        # exponential release: start from the model's anchors' own decay (the empty model: 0.1 s)
        step = model.scfg.release_step
        a1 = np.clip(model.release[:, 1], 1e-6, 0.999999)
        self.log_rates = np.log(-np.log(a1) / step)
        self.delay = 0.0
        if model.scfg.release_model == "exponential":
            model.set_release(self._exponential_anchors(np.append(self.log_rates, self.delay), n_a))

    # ---------------------------------------------------------------- per-note weights
    def _weights(self, ev: NoteEvents) -> tuple[np.ndarray, np.ndarray]:
        g = curve(self.m.gain_knots, ev.velocity, self.m.scfg.velocity_knots)
        c = curve(self.m.timbre_knots, ev.velocity, self.m.scfg.velocity_knots)
        return g.astype(np.float32), c.astype(np.float32)

    def _notes(self, piece: Piece):
        """Per note: (key, onset, length, weight along its own time axis (g * release * fade), c)."""
        ev = piece.events
        g, c = self._weights(ev)
        n_samples = len(piece.audio)
        for m in range(len(ev)):
            o = int(ev.onset[m])
            length = min(int(ev.reach[m]), n_samples) - o
            if length <= 0:
                continue
            w = self.m.note_shape(ev, m, 0, length) * g[m]
            yield int(ev.key[m]), o, length, w, float(c[m])

    @staticmethod
    def _w(r: np.ndarray, piece: Piece) -> np.ndarray:
        """``W r``: a residual (samples,) times the piece's squared-error weight."""
        return r if piece.weight is None else r * piece.weight

    # ---------------------------------------------------------------- the linear operator in the waveforms
    def forward(self, S: np.ndarray, C: np.ndarray, piece: Piece) -> np.ndarray:
        y = np.zeros(len(piece.audio), np.float32)
        for k, o, n, w, c in self._notes(piece):
            seg = S[k, :n] * w
            if c != 0.0 and self.Lc:
                b = min(n, self.Lc)
                seg[:b] += c * w[:b] * C[k, :b]
            y[o:o + n] += seg
        return y

    def adjoint(self, r: np.ndarray, piece: Piece, GS: np.ndarray, GC: np.ndarray) -> None:
        for k, o, n, w, c in self._notes(piece):
            rw = r[o:o + n] * w
            GS[k, :n] += rw
            if c != 0.0 and self.Lc:
                b = min(n, self.Lc)
                GC[k, :b] += c * rw[:b]

    def diag(self) -> tuple[np.ndarray, np.ndarray]:
        PS = np.zeros((88, self.L), np.float32)
        PC = np.zeros((88, self.Lc), np.float32)
        for p in self.pieces:
            for k, o, n, w, c in self._notes(p):
                w2 = w * w if p.weight is None else w * w * p.weight[o:o + n]
                PS[k, :n] += w2
                if c != 0.0 and self.Lc:
                    b = min(n, self.Lc)
                    PC[k, :b] += c * c * w2[:b]
        return PS, PC

    def normal(self, S: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A^T W A [S, C] (the ridge is added by the caller)."""
        GS, GC = np.zeros_like(S), np.zeros_like(C)
        for p in self.pieces:
            self.adjoint(self._w(self.forward(S, C, p), p), p, GS, GC)
        return GS, GC

    def error(self, pieces: list[Piece] | None = None) -> float:
        """Relative squared error ||y - y_hat||^2 / ||y||^2 over ``pieces`` (default: the fitted ones)."""
        num = den = 0.0
        for p in pieces if pieces is not None else self.pieces:
            y = self.forward(self.m.waves, self.m.timbre, p)
            num += float(np.sum((p.audio - y) ** 2, dtype=np.float64))
            den += float(np.sum(p.audio ** 2, dtype=np.float64))
        return num / max(den, 1e-30)

    # ---------------------------------------------------------------- step 1: waveforms
    def fit_waves(self, iterations: int, report: Callable[[str], None] = log.info,
                  project: SubFundamentalProjection | None = None) -> None:
        """``iterations`` of preconditioned CG from the current waveforms. ``project``: an orthogonal projection
        of waveforms (88, L) that acts on the samples from ``project.start`` on; the solve then stays inside its
        range (projected CG: the start, the gradient, the preconditioned direction and the operator's output are
        projected), and there the preconditioner is each key's mean weight over each of ``project.segments``, a
        constant that commutes with the projection (a per-sample one would blow up the samples few notes reach
        once the projection spreads the gradient over them)."""
        P = project if project is not None else (lambda x: x)
        m = self.m
        PS, PC = self.diag()
        if project is not None:
            for a, b in project.segments:
                PS[:, a:b] = PS[:, a:b].mean(axis=1, keepdims=True)
        # ridge: relative to each coefficient's own weight (a uniform shrink of 1 / (1 + ridge)), plus a floor
        # that keeps a (key, sample) no training note reaches at 0
        floor = 1e-6 * float(max(PS.max(), 1e-12))
        lamS, lamC = self.ridge * PS + floor, self.ridge * PC + floor
        PS += lamS
        PC += lamC
        S, C = P(m.waves.copy()), m.timbre.copy()
        GS, GC = np.zeros_like(S), np.zeros_like(C)  # r = A^T W (y - A x) - lam x
        for p in self.pieces:
            self.adjoint(self._w(p.audio - self.forward(S, C, p), p), p, GS, GC)
        GS = P(GS - lamS * S)
        GC -= lamC * C
        zS, zC = P(GS / PS), GC / PC
        pS, pC = zS.copy(), zC.copy()
        rz = float(np.vdot(GS, zS) + np.vdot(GC, zC))
        rz0 = rz
        for it in range(iterations):
            t0 = time.perf_counter()
            qS, qC = self.normal(pS, pC)
            qS = P(qS + lamS * pS)
            qC += lamC * pC
            alpha = rz / max(float(np.vdot(pS, qS) + np.vdot(pC, qC)), 1e-30)
            S += alpha * pS
            C += alpha * pC
            GS -= alpha * qS
            GC -= alpha * qC
            zS, zC = P(GS / PS), GC / PC
            rz_new = float(np.vdot(GS, zS) + np.vdot(GC, zC))
            beta = rz_new / max(rz, 1e-30)
            pS = zS + beta * pS
            pC = zC + beta * pC
            rz = rz_new
            report(f"waves CG {it + 1}/{iterations}: preconditioned residual {rz / max(rz0, 1e-30):.3e} "
                   f"({time.perf_counter() - t0:.1f} s)")
        m.waves, m.timbre = S.astype(np.float32), C.astype(np.float32)

    # ---------------------------------------------------------------- step 2: velocity curves
    def fit_curves(self) -> None:
        """Exact least squares of the K gain and K timbre knot values (the waveforms fixed)."""
        m = self.m
        knots = m.scfg.velocity_knots
        K = len(knots)
        H = np.zeros((2 * K, 2 * K))
        b = np.zeros(2 * K)
        for p in self.pieces:
            cols = np.zeros((2 * K, len(p.audio)), np.float32)
            ev = p.events
            i_lo, wt = knot_weights(ev.velocity, knots)
            for m_i in range(len(ev)):
                o = int(ev.onset[m_i])
                n = min(int(ev.reach[m_i]), len(p.audio)) - o
                if n <= 0:
                    continue
                shape = m.note_shape(ev, m_i, 0, n)
                k = int(ev.key[m_i])
                a = shape * m.waves[k, :n]
                for j, h in ((i_lo[m_i], 1 - wt[m_i]), (i_lo[m_i] + 1, wt[m_i])):
                    if h == 0:
                        continue
                    cols[j, o:o + n] += h * a
                    if self.Lc:
                        nb = min(n, self.Lc)
                        cols[K + j, o:o + nb] += h * shape[:nb] * m.timbre[k, :nb]
            wcols = cols.astype(np.float64) if p.weight is None else (cols * p.weight).astype(np.float64)
            H += wcols @ cols.T.astype(np.float64)
            b += wcols @ p.audio.astype(np.float64)
        # a ridge on the timbre knots (toward no timbre change) keeps a velocity with little data from trading
        # loudness against timbre; the loudness knots get only a tiny one
        ridge = np.full(2 * K, 1e-9)
        ridge[K:] = 1e-3
        H += np.diag(ridge * max(np.trace(H) / len(H), 1e-30))
        x = np.linalg.solve(H, b)
        gain, gc = x[:K], x[K:]
        safe = np.where(np.abs(gain) > 1e-12, gain, 1e-12)
        m.gain_knots, m.timbre_knots = gain, gc / safe
