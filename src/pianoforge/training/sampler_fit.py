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

After the last round, optionally, :func:`pianoforge.training.sampler_late.monotone_late`.

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


class SamplerFit:
    """Alternating least squares of a :class:`NoteSampler` on ``pieces``."""

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
    def fit_waves(self, iterations: int, report: Callable[[str], None] = log.info) -> None:
        m = self.m
        PS, PC = self.diag()
        # ridge: relative to each coefficient's own weight (a uniform shrink of 1 / (1 + ridge)), plus a floor
        # that keeps a (key, sample) no training note reaches at 0
        floor = 1e-6 * float(max(PS.max(), 1e-12))
        lamS, lamC = self.ridge * PS + floor, self.ridge * PC + floor
        PS += lamS
        PC += lamC
        S, C = m.waves.copy(), m.timbre.copy()
        GS, GC = np.zeros_like(S), np.zeros_like(C)  # r = A^T W (y - A x) - lam x
        for p in self.pieces:
            self.adjoint(self._w(p.audio - self.forward(S, C, p), p), p, GS, GC)
        GS -= lamS * S
        GC -= lamC * C
        zS, zC = GS / PS, GC / PC
        pS, pC = zS.copy(), zC.copy()
        rz = float(np.vdot(GS, zS) + np.vdot(GC, zC))
        rz0 = rz
        for it in range(iterations):
            t0 = time.perf_counter()
            qS, qC = self.normal(pS, pC)
            qS += lamS * pS
            qC += lamC * pC
            alpha = rz / max(float(np.vdot(pS, qS) + np.vdot(pC, qC)), 1e-30)
            S += alpha * pS
            C += alpha * pC
            GS -= alpha * qS
            GC -= alpha * qC
            zS, zC = GS / PS, GC / PC
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

    # ---------------------------------------------------------------- step 3: release envelopes
    def _release_normal(self) -> tuple[np.ndarray, np.ndarray]:
        """The release anchors' Gauss-Newton system at the current parameters: (gradient (K, n_a), curvature
        (K * n_a, K * n_a)). The gradient is exact; the curvature keeps each note's own terms (its tail
        against itself) and drops the overlap of different notes' tails."""
        m = self.m
        step = m.scfg.release_step
        K, n_a = m.release.shape
        R = n_a * step
        pos = np.arange(R) / step  # position in anchor units
        lo = np.floor(pos).astype(np.int64)
        fr = (pos - lo).astype(np.float32)
        size = K * (n_a + 1)  # one spare anchor per knot for the upper neighbour of the last one
        diag_idx = np.arange(n_a + 1)
        grad = np.zeros(size)
        H = np.zeros((size, size))
        for p in self.pieces:
            r = self._w(p.audio - self.forward(m.waves, m.timbre, p), p)
            ev = p.events
            g, c = self._weights(ev)
            kn, kw = knot_weights(ev.velocity, m.scfg.velocity_knots)
            for m_i in range(len(ev)):
                o, rel = int(ev.onset[m_i]), int(ev.release[m_i])
                n_end = min(int(ev.reach[m_i]), len(p.audio))
                if n_end <= rel:
                    continue
                d = n_end - rel  # release samples inside the table and the piece
                k = int(ev.key[m_i])
                t0 = rel - o
                u = m.waves[k, t0:t0 + d] * g[m_i]
                if t0 < self.Lc:
                    b = min(d, self.Lc - t0)
                    u[:b] += g[m_i] * c[m_i] * m.timbre[k, t0:t0 + b]
                f0 = self.L - len(m.fade)
                if t0 + d > f0:
                    a = max(f0 - t0, 0)
                    u[a:] *= m.fade[t0 + a - f0:t0 + d - f0]
                rr = r[rel:rel + d]
                a0, f = lo[:d], fr[:d]
                gl = np.bincount(a0, (1 - f) * u * rr, n_a + 1) + np.bincount(a0 + 1, f * u * rr, n_a + 1)
                u2 = u.astype(np.float64) ** 2
                if p.weight is not None:
                    u2 *= p.weight[rel:rel + d]
                hd = np.bincount(a0, (1 - f) ** 2 * u2, n_a + 1) + np.bincount(a0 + 1, f ** 2 * u2, n_a + 1)
                ho = np.bincount(a0, (1 - f) * f * u2, n_a + 1)[:n_a]
                pair = ((kn[m_i], 1 - kw[m_i]), (kn[m_i] + 1, kw[m_i]))
                for j1, w1 in pair:
                    if w1 == 0:
                        continue
                    b1 = j1 * (n_a + 1)
                    grad[b1:b1 + n_a + 1] += w1 * gl
                    for j2, w2 in pair:
                        if w2 == 0:
                            continue
                        b2 = j2 * (n_a + 1)
                        H[b1 + diag_idx, b2 + diag_idx] += w1 * w2 * hd
                        H[b1 + diag_idx[:-1], b2 + diag_idx[1:]] += w1 * w2 * ho
                        H[b1 + diag_idx[1:], b2 + diag_idx[:-1]] += w1 * w2 * ho
        keep = np.concatenate([np.arange(j * (n_a + 1), j * (n_a + 1) + n_a) for j in range(K)])
        return grad[keep].reshape(K, n_a), H[np.ix_(keep, keep)]

    def fit_release(self, steps: int = 3) -> None:
        """Release envelopes: ``table`` (free anchors, Gauss-Newton on them) or ``exponential`` (per velocity knot
        ``e(d) = 1`` before a shared delay ``d0``, ``exp(-(d - d0) * rate_j)`` after; Gauss-Newton on
        ``log rate_j`` and ``d0`` through the anchors' system, with a smoothness prior on the log rates across
        knots so that a knot with little data follows its neighbours)."""
        m = self.m
        K, n_a = m.release.shape
        for _ in range(steps):
            grad, H = self._release_normal()
            if m.scfg.release_model == "table":
                Hk = H + 1e-6 * max(np.trace(H) / len(H), 1e-30) * np.eye(len(H))
                new = np.clip(m.release + np.linalg.solve(Hk, grad.ravel()).reshape(K, n_a), 0.0, 1.5)
                new[:, -1] = 0.0
                m.set_release(new)
                continue
            theta = np.append(self.log_rates, self.delay)
            J = self._release_jacobian(theta, n_a)  # (K * n_a, K + 1)
            Ht = J.T @ H @ J
            gt = J.T @ grad.ravel()
            D = np.diff(np.eye(K), 2, axis=0)  # second differences of the log rates across knots
            prior = np.zeros((K + 1, K + 1))
            prior[:K, :K] = D.T @ D
            scale = max(np.trace(Ht) / (K + 1), 1e-30)
            lam = 1e-3 * scale
            A = Ht + lam * prior + 1e-6 * scale * np.eye(K + 1)
            b = gt - lam * prior @ theta
            delta = np.linalg.solve(A, b)
            delta[:K] = np.clip(delta[:K], -1.0, 1.0)  # at most a factor e per step
            delta[K] = np.clip(delta[K], -64.0, 64.0)
            theta = theta + delta
            theta[K] = max(theta[K], 0.0)
            self.log_rates, self.delay = theta[:K], float(theta[K])
            m.set_release(self._exponential_anchors(theta, n_a))

    def _exponential_anchors(self, theta: np.ndarray, n_a: int) -> np.ndarray:
        step = self.m.scfg.release_step
        x = np.arange(n_a) * step - theta[-1]
        rates = np.exp(theta[:-1])[:, None]
        anchors = np.where(x[None, :] < 0, 1.0, np.exp(-np.maximum(x, 0)[None, :] * rates))
        anchors[:, -1] = 0.0
        return anchors.astype(np.float32)

    def _release_jacobian(self, theta: np.ndarray, n_a: int) -> np.ndarray:
        """d anchors / d (log rates, delay): (K * n_a, K + 1)."""
        K = len(theta) - 1
        step = self.m.scfg.release_step
        x = np.arange(n_a) * step - theta[-1]
        rates = np.exp(theta[:-1])
        after = (x >= 0)[None, :] & (np.arange(n_a) < n_a - 1)[None, :]
        A = np.exp(-np.maximum(x, 0)[None, :] * rates[:, None])
        J = np.zeros((K, n_a, K + 1))
        for j in range(K):
            J[j, :, j] = np.where(after[0], -x * rates[j] * A[j], 0.0)
            J[j, :, K] = np.where(after[0], rates[j] * A[j], 0.0)
        return J.reshape(K * n_a, K + 1)
