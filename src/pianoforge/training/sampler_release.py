"""Step 3 of the sampler fit (:mod:`pianoforge.training.sampler_fit`): the release envelopes, by Gauss-Newton
steps on their anchors (``release_model: table``) or on a delay and one decay rate per velocity knot
(``exponential``), ignoring the overlap of different notes' release tails in the curvature (the gradient is
exact). A mixin of :class:`pianoforge.training.sampler_fit.SamplerFit`, which holds the model ``m``, the
training ``pieces``, the operator ``forward`` and the weights ``_w`` / ``_weights`` it uses, and the
exponential model's parameters ``log_rates`` (K,) and ``delay`` (samples)."""

from __future__ import annotations

import numpy as np

from pianoforge.models.sampler import knot_weights


class ReleaseFit:
    """The release-envelope step of :class:`pianoforge.training.sampler_fit.SamplerFit` (see the module)."""

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
