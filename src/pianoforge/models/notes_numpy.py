"""The notes head without torch: :class:`NumpyNotesModel` computes what ``PerformModel.forward`` does for a
``head: notes`` model that has no residual trunk (``note_residual: false``: the trunk is never evaluated), in
numpy, from the same weights. A render with it imports neither torch nor numba (start-up: docs/perform.md).

Same steps as :class:`pianoforge.models.note_synth.NoteSynthHead` (that module is the spec; this one follows
it operation by operation, in float32):

- the sounding (batch, frame, key) rows and their note features, from the note-state channels;
- the excitation MLP ``Linear -> GELU -> Linear -> GELU -> Linear``, clamped to [-30, 15]; GELU is the exact
  erf form (``nn.GELU()``'s default), erf by the rational approximation that Eigen and XLA use for float32
  (:func:`erf`, within 2e-7 of ``math.erf``), bias + GELU in C where a compiler is found (:func:`bias_gelu`);
- the power ``sum_k sum_r exp(2 g) T[k, r] + gain * table(age)`` (each row's templates and its two table
  anchors, linearly interpolated in strike age), gathered row by row and summed into its frame;
- ``log(sqrt(P + FLOOR) + eps)``, then the model's output normalization ``(logmag - mean) / std``.

Differences from torch: float rounding only (BLAS order of the matrix products, SIMD ``exp``/``log``, the erf
approximation): the de-normalized log-magnitude agrees to about 1e-5 (tests/test_numpy_engine.py states the
tolerance and checks it on the etude and on random scores).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pianoforge import native
from pianoforge.config import N_KEYS, NOTE_AGE_S, NOTE_RELEASE_S, AudioConfig
from pianoforge.models.perform_config import PerformModelConfig

FLOOR = 1e-30
"""As :data:`pianoforge.models.note_synth.FLOOR` (a test checks they are equal)."""
FRAMES_PER_CHUNK = 64
"""Frames whose power is summed by one matrix product (their rows use a few hundred of the bank's rows)."""

_ERF_ALPHA = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
              -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_BETA = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
             -1.42647390514189e-02)


def erf(x: np.ndarray) -> np.ndarray:
    """float32 erf: ``x * alpha(x^2) / beta(x^2)`` on ``x`` clamped to [-4, 4] (the rational approximation
    of Eigen's and XLA's float32 erf; beyond 4, erf is 1 in float32)."""
    x = np.clip(x, np.float32(-4.0), np.float32(4.0))
    x2 = x * x
    p = np.full_like(x, np.float32(_ERF_ALPHA[0]))
    for c in _ERF_ALPHA[1:]:
        p *= x2
        p += np.float32(c)
    q = np.full_like(x, np.float32(_ERF_BETA[0]))
    for c in _ERF_BETA[1:]:
        q *= x2
        q += np.float32(c)
    p *= x
    p /= q
    return p


def gelu(x: np.ndarray) -> np.ndarray:
    """``x * 0.5 * (1 + erf(x / sqrt 2))`` (float32), torch's ``nn.GELU()``."""
    e = erf(x * np.float32(1.0 / math.sqrt(2.0)))
    e += np.float32(1.0)
    e *= np.float32(0.5)
    e *= x
    return e


def bias_gelu(h: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``gelu(h + bias)`` for (rows, cols) float32 ``h`` (overwritten) and (cols,) ``bias``: the C kernel
    (:mod:`pianoforge.native`, the same float32 operations, so bit-identical, and ~15x faster: numpy makes a pass
    over the array per operation), or :func:`gelu` where no C compiler was found."""
    lib = native.library()
    if lib is None or h.dtype != np.float32 or not h.flags.c_contiguous or h.ndim != 2:
        return gelu(h + bias)
    b = np.ascontiguousarray(bias, dtype=np.float32)
    if b.shape != (h.shape[1],):
        raise ValueError(f"bias_gelu: bias must have shape ({h.shape[1]},), got {b.shape}")
    lib.pf_bias_gelu(h.ctypes.data, b.ctypes.data, h.shape[0], h.shape[1])
    return h


def qualifies(model: dict[str, Any]) -> bool:
    """Whether a checkpoint's ``model`` section can run on :class:`NumpyNotesModel`: the notes head, without
    the trunk's residual (the layers below the head are then never evaluated)."""
    return model.get("head") == "notes" and not model.get("note_residual", False)


class NumpyNotesModel:
    """``PerformModel`` of a notes-head checkpoint, in numpy: ``model(score)`` maps (B, T, in_channels) float32
    frame encodings to the (B, T, bins) raw output (normalized log-magnitude), :meth:`to_logmag` undoes the
    normalization. Built by :meth:`from_tensors` from the checkpoint's tensors (numpy) and sections."""

    carries_phase = False
    reads_envelopes = False
    """The head reads the onset, velocity and note-state channels only: the renderer may leave the envelope
    channels at 0 (``BlockEncoder(envelopes=False)``)."""

    def __init__(self, cfg: PerformModelConfig, audio: AudioConfig, tensors: dict[str, np.ndarray]) -> None:
        if not qualifies(cfg.to_dict()):
            raise ValueError("the numpy engine runs notes-head models without note_residual only")
        self.cfg, self.audio = cfg, audio
        self.out_dim = audio.n_bins
        t = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        self._n_params = sum(v.size for k, v in t.items() if k.startswith("head.") and k != "head.anchors")
        n0 = cfg.note_channels
        self.age_sl, self.rel_sl, self.vel_sl = (slice(n0 + i * N_KEYS, n0 + (i + 1) * N_KEYS) for i in range(3))
        self.svel_sl = (slice(cfg.velocity_channels, cfg.velocity_channels + N_KEYS)
                        if cfg.velocity_channels >= 0 else None)
        self.rank, self.subframe, self.use_table = cfg.note_rank, cfg.note_subframe, cfg.note_table
        self.cutoff = float(cfg.note_release_cutoff)
        self.embed = t["head.key_embed.weight"]  # (88, embed)
        self.layers = [(t[f"head.mlp.{i}.weight"].T.copy(), t[f"head.mlp.{i}.bias"]) for i in (0, 2, 4)]
        bank = [np.exp(np.float32(2.0) * t["head.theta"]).reshape(N_KEYS * self.rank, -1)]
        if self.use_table:
            self.anchors = t["head.anchors"]
            bank.append(np.exp(np.float32(2.0) * t["head.table"]))
        self.bank = np.ascontiguousarray(np.concatenate(bank))  # (88 rank [+ 88 anchors], bins) power rows
        self.mean, self.std = t["mean"], t["std"]
        n_out = self.layers[-1][0].shape[1]
        if self.layers[0][0].shape[0] != self.embed.shape[1] + 11 + (2 if self.subframe else 0) \
                or n_out != self.rank + (1 if self.use_table else 0) or self.bank.shape[1] != audio.n_bins:
            raise ValueError("the notes head's tensors do not match its model section")

    @classmethod
    def from_tensors(cls, model: dict[str, Any], audio: AudioConfig,
                     tensors: dict[str, np.ndarray]) -> NumpyNotesModel:
        """From a checkpoint's ``model`` section (checked key by key) and its tensors."""
        return cls(PerformModelConfig.from_dict(model), audio, tensors)

    # -- note features (NoteSynthHead.features) -------------------------------------------------------
    def _rows(self, score: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        """(B, T, C) -> the sounding (batch, frame, key) index triples, their features (rows, n_in) float32
        and their strike-age channel values."""
        fr = self.audio.frame_rate
        f32 = np.float32
        age_c, rel_c = score[..., self.age_sl], score[..., self.rel_sl]
        struck = age_c > 0
        released = rel_c > 0
        sounding = struck & (~released | (rel_c > f32(math.exp(-self.cutoff / NOTE_RELEASE_S))))
        onset = score[..., 0:N_KEYS]
        svel = score[..., self.svel_sl] if self.svel_sl is not None else onset
        strikes = onset * svel
        nxt = []
        for s in (1, 2):
            z = np.zeros_like(strikes)
            z[:, :-s] = strikes[:, s:]
            nxt.append(z)
        mask = sounding | (nxt[0] > 0) | (nxt[1] > 0)
        poly = sounding.sum(-1).astype(f32) / f32(10.0)
        idx = np.nonzero(mask)
        a_c, r_c, vel = age_c[idx], rel_c[idx], score[..., self.vel_sl][idx]
        st, rl = a_c > 0, r_c > 0
        age = np.where(st, np.minimum(f32(-NOTE_AGE_S) * np.log(np.maximum(a_c, f32(1e-30))), f32(60.0)), f32(0.0))
        rel = np.where(rl, f32(-NOTE_RELEASE_S) * np.log(np.maximum(r_c, f32(1e-30))), f32(0.0))
        rel = np.minimum(rel, f32(self.cutoff))
        stf, rf = st.astype(f32), rl.astype(f32)
        pitch = idx[2].astype(f32) / f32(N_KEYS - 1)
        inv_fr = f32(1.0 / fr)
        cols = [np.log(age + inv_fr) * stf, age / f32(10.0), rf, np.log(rel + inv_fr) * rf, rel / f32(5.0) * rf, vel,
                nxt[0][idx], nxt[1][idx], stf, pitch, poly[idx[0], idx[1]]]
        if self.subframe:
            t = onset.shape[1]
            ta = f32(-NOTE_AGE_S * fr)
            for s in (1, 2):
                tt = idx[1] + s
                ok = tt < t
                tt = np.minimum(tt, t - 1)
                o = onset[idx[0], tt, idx[2]] * ok.astype(f32)
                cols.append(ta * np.log(np.maximum(age_c[idx[0], tt, idx[2]], f32(1e-30))) * o)
        cols.append(self.embed[idx[2]])
        feats = np.concatenate([c[:, None] if c.ndim == 1 else c for c in cols], axis=1)
        return idx, feats, a_c

    def _mlp(self, x: np.ndarray) -> np.ndarray:
        """(rows, n_in) -> (rows, rank [+ 1]) clamped log-amplitudes."""
        (w0, b0), (w1, b1), (w2, b2) = self.layers
        h = bias_gelu(x @ w0, b0)
        h = bias_gelu(h @ w1, b1)
        return np.clip(h @ w2 + b2, np.float32(-30.0), np.float32(15.0))

    def _table(self, a_c: np.ndarray, key: np.ndarray, gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bank rows (rows, 2) of the two strike-age anchors around each row's age and their weights."""
        f32 = np.float32
        age = f32(-NOTE_AGE_S) * np.log(np.maximum(a_c, f32(1e-30)))
        anc = self.anchors
        n = anc.shape[0]
        j = np.clip(np.searchsorted(anc, age, side="right") - 1, 0, n - 2)
        frac = np.clip((age - anc[j]) / (anc[j + 1] - anc[j]), f32(0.0), f32(1.0))
        gain = gain * (a_c > 0).astype(f32)
        base = N_KEYS * self.rank + key * n + j
        return np.stack([base, base + 1], axis=1), np.stack([gain * (f32(1.0) - frac), gain * frac], axis=1)

    def power(self, score: np.ndarray) -> np.ndarray:
        """(B, T, C) encoding -> (B, T, bins) float32 power (``NoteSynthHead.power``).

        The sum runs as matrix products over :data:`FRAMES_PER_CHUNK` frames at a time: each chunk's weights
        are scattered into a dense (frames, bank rows used) matrix, then multiplied by those bank rows (BLAS;
        a chunk touches a few hundred of the bank's rows), instead of a gather of every row's spectra."""
        b, t = score.shape[:2]
        idx, feats, a_c = self._rows(score)
        f32 = np.float32
        n_frames = b * t
        out = np.zeros((n_frames, self.out_dim), f32)
        frame = idx[0] * t + idx[1]
        r = self.rank
        ar = np.arange(r)
        bounds = np.searchsorted(frame, np.arange(0, n_frames + FRAMES_PER_CHUNK, FRAMES_PER_CHUNK))
        used = np.zeros(self.bank.shape[0], bool)
        for ci, (c0, c1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if c1 <= c0:
                continue
            g = self._mlp(feats[c0:c1])
            key = idx[2][c0:c1]
            cols = key[:, None] * r + ar
            weights = np.exp(f32(2.0) * g[:, :r])
            if self.use_table:
                tc, tw = self._table(a_c[c0:c1], key, np.exp(f32(2.0) * g[:, r]))
                cols, weights = np.concatenate([cols, tc], 1), np.concatenate([weights, tw], 1)
            used[:] = False
            used[cols.ravel()] = True
            active = np.flatnonzero(used)
            local = np.cumsum(used) - 1  # bank row -> its column among the active ones
            f0 = ci * FRAMES_PER_CHUNK
            nf = min(FRAMES_PER_CHUNK, n_frames - f0)
            pos = (frame[c0:c1, None] - f0) * len(active) + local[cols]
            w = np.bincount(pos.ravel(), weights.ravel(), minlength=nf * len(active)).astype(f32)
            np.matmul(w.reshape(nf, len(active)), self.bank[active], out=out[f0:f0 + nf])
        return out.reshape(b, t, -1)

    def __call__(self, score: np.ndarray) -> np.ndarray:
        """(B, T, in_channels) float32 -> (B, T, bins) normalized log-magnitude (``PerformModel.forward``)."""
        score = np.ascontiguousarray(score, dtype=np.float32)
        p = self.power(score)
        p += np.float32(FLOOR)
        logmag = np.log(np.sqrt(p) + np.float32(self.audio.log_eps))
        return (logmag - self.mean) / self.std

    def num_parameters(self) -> int:
        """Learned weights of the head (as ``PerformModel.num_parameters``: buffers not counted)."""
        return self._n_params

    def to_logmag(self, out: np.ndarray) -> np.ndarray:
        """Raw output (..., bins) -> natural-log magnitude (``PerformModel.to_logmag`` for ``logmag``)."""
        return out * self.std + self.mean

