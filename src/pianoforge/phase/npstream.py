"""Streaming phase reconstruction without torch: :class:`NumpyPhaseStream` is :class:`pianoforge.phase.stream.
PhaseStream` for ``pghi+gl``, ``pghi`` and ``zero`` on numpy arrays, with scipy.fft for the FFTs (numpy's
forward real FFT is ~3x slower than torch's here; scipy's is as fast) and the same C kernels
(:mod:`pianoforge.native`: PGHI integration, Griffin-Lim projection). It is what the numpy engine
(:mod:`pianoforge.models.notes_numpy`) renders with, so that a render imports no torch.

Same algorithm, block layout and look-ahead as the torch stream (that module's docstring explains why the
blocks are exact); the results agree to float rounding (FFT implementations differ in the last bits;
tests/test_numpy_engine.py). Needs the C kernels: :func:`available` is False without a C compiler (or with
``PIANOFORGE_KERNELS=numba``), and the renderer then uses the torch stream. ``griffinlim`` (random start phases
drawn by torch's generator) and ``direct`` stay with the torch stream.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view

from pianoforge import native
from pianoforge.config import AudioConfig
from pianoforge.phase.params import (
    BLOCK_FRAMES,
    PGHI_BLOCK,
    PGHI_LEVELS,
    STREAM_TOL,
    context_frames,
    gamma_of,
)

RUN_ROWS = 512
"""Rows of one PGHI kernel call (a multiple of ``PGHI_BLOCK``): ~6 MB of work arrays at 513 bins."""

METHODS = ("pghi+gl", "pghi", "zero")
"""The phase methods :class:`NumpyPhaseStream` runs."""


def available() -> bool:
    """Whether the C kernels (which this stream needs) are built and loaded."""
    return native.library() is not None


def window(cfg: AudioConfig) -> np.ndarray:
    """(n_fft,) float32 analysis window, as :func:`pianoforge.audio.spectral.window` (periodic Hann or rect)."""
    n = cfg.n_fft
    if cfg.window == "rect":
        return np.ones(n, np.float32)
    x = np.arange(n, dtype=np.float32) * np.float32(2.0 * math.pi / n)  # as torch: float32 angles
    return np.float32(0.5) - np.float32(0.5) * np.cos(x.astype(np.float64)).astype(np.float32)


def polar(mag: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """mag * exp(i phase), complex64."""
    out = np.empty(mag.shape, np.complex64)
    out.real = mag * np.cos(phase)
    out.imag = mag * np.sin(phase)
    return out


_FRAMES: dict[tuple[AudioConfig, int], Frames] = {}


def frames_for(cfg: AudioConfig, frames: int) -> Frames:
    """A :class:`Frames` of ``frames`` (kept: a stream's blocks share two or three lengths, and the window
    envelope costs an overlap-add of ``frames`` windows to make)."""
    key = (cfg, int(frames))
    eng = _FRAMES.get(key)
    if eng is None:
        if len(_FRAMES) >= 16:
            _FRAMES.clear()
        eng = _FRAMES[key] = Frames(cfg, frames)
    return eng


class Frames:
    """:class:`pianoforge.phase.engine.Frames` in numpy: exactly the STFT / inverse STFT of a signal of
    ``frames * hop`` samples on (batch, frames, bins) spectra, through a zero-padded buffer of ``size``
    samples whose audio is ``buffer[off:off + length]``."""

    def __init__(self, cfg: AudioConfig, frames: int) -> None:
        n, hop = cfg.n_fft, cfg.hop_length
        self.frames, self.n_fft, self.hop = frames, n, hop
        self.length = frames * hop
        self.win = window(cfg)
        self.off = n // 2 if cfg.center else 0
        self.size = max((frames - 1) * hop + n, self.off + self.length)
        env = np.maximum(self._ola(np.broadcast_to(self.win**2, (1, frames, n)))[0], np.float32(1e-8))
        inv = np.zeros(self.size, np.float32)
        inv[self.off:self.off + self.length] = np.float32(1.0) / env[self.off:self.off + self.length]
        self.inv_env = inv

    def _ola(self, fr: np.ndarray) -> np.ndarray:
        """Overlap-add (batch, k, n_fft) frames starting at 0, hop, 2 hop... into (batch, size)."""
        b, k, n = fr.shape
        hop = self.hop
        if n % hop == 0:
            r = n // hop
            rows = max(k + r - 1, -(-self.size // hop))
            out = np.zeros((b, rows, hop), np.float32)
            blocks = fr.reshape(b, k, r, hop)
            for j in range(r):
                out[:, j:j + k] += blocks[:, :, j]
            return out.reshape(b, rows * hop)[:, :self.size]
        out = np.zeros((b, max(self.size, (k - 1) * hop + n)), np.float32)
        for i in range(k):
            out[:, i * hop:i * hop + n] += fr[:, i]
        return out[:, :self.size]

    def synth(self, spec: np.ndarray) -> np.ndarray:
        """(batch, frames, bins) complex -> (batch, size) buffer holding the inverse STFT at ``off``."""
        fr = sfft.irfft(spec, n=self.n_fft, axis=-1)
        lib = native.library()
        b, k, n = fr.shape
        if lib is not None and fr.dtype == np.float32 and fr.flags.c_contiguous and self.size >= (k - 1) * self.hop + n:
            y = np.zeros((b, self.size), np.float32)  # window, overlap-add and envelope in one C pass
            lib.pf_ola(fr.ctypes.data, self.win.ctypes.data, self.inv_env.ctypes.data, b, k, n, self.hop, self.size,
                       y.ctypes.data)
            return y
        fr *= self.win
        y = self._ola(fr)
        y *= self.inv_env
        return y

    def analyse(self, buf: np.ndarray) -> np.ndarray:
        """(batch, size) buffer -> (batch, frames, bins) complex64, the STFT of the audio it holds."""
        fr = sliding_window_view(buf, self.n_fft, axis=-1)[:, ::self.hop][:, :self.frames] * self.win
        return sfft.rfft(fr, axis=-1)

    def audio(self, buf: np.ndarray) -> np.ndarray:
        return buf[:, self.off:self.off + self.length]


def _flat(x: np.ndarray) -> np.ndarray:
    """A contiguous array as flat float32 (complex as interleaved re, im)."""
    return x.view(np.float32).reshape(-1)


def iterate(mt: np.ndarray, a: np.ndarray, cfg: AudioConfig, n_iter: int, momentum: float) -> np.ndarray:
    """``n_iter`` fast Griffin-Lim iterations from ``a`` ((batch, frames, bins) complex64, modified in place)
    for the magnitude ``mt``; returns the (batch, frames * hop) audio (``griffinlim.iterate``)."""
    lib = native.library()
    eng = frames_for(cfg, mt.shape[1])
    alpha = float(np.float32(momentum / (1.0 + momentum)))
    prev: np.ndarray | None = None
    mf = _flat(np.ascontiguousarray(mt, dtype=np.float32))
    for _ in range(n_iter):
        rebuilt = np.ascontiguousarray(eng.analyse(eng.synth(a)), dtype=np.complex64)
        p, al = (rebuilt, 0.0) if prev is None else (prev, alpha)
        lib.pf_project(_flat(rebuilt).ctypes.data, _flat(p).ctypes.data, mf.ctypes.data, mf.size,
                       float(np.float32(al)), _flat(a).ctypes.data)
        prev = rebuilt
    return eng.audio(eng.synth(a))


class PghiStream:
    """:class:`pianoforge.phase.stream.PghiStream` in numpy: (frames, bins) float32 magnitude blocks in, the
    PGHI phases (frames, bins) float32 of the frames integrated so far out; equal to the whole-plane
    ``pghi(mag, cfg, STREAM_TOL, reference=full_scale(cfg))``."""

    def __init__(self, cfg: AudioConfig) -> None:
        self.cfg, self.gamma = cfg, gamma_of(cfg, None)
        ref = float(window(cfg).sum())
        self.floor, self.top = math.log(ref * STREAM_TOL), math.log(ref)
        self.carry = np.zeros(cfg.n_bins)
        self.prev: np.ndarray | None = None
        self.pending = np.zeros((0, cfg.n_bins), np.float32)
        self.done = 0

    def _run(self, n: int, lookahead: bool) -> np.ndarray:
        """Integrate the next ``n`` pending rows, :data:`RUN_ROWS` at a time (the kernel's work arrays are ~22
        bytes per cell of the rows it is given; the result does not depend on the split, as it does not on
        the blocks pushed: each call continues from the carried row)."""
        out = []
        for c0 in range(0, n, RUN_ROWS):
            m = min(RUN_ROWS, n - c0)
            out.append(self._run_rows(m, lookahead or c0 + m < n))
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _run_rows(self, n: int, lookahead: bool) -> np.ndarray:
        rows = self.pending[:n + 1] if lookahead else self.pending[:n]
        first = 0
        if self.prev is not None:
            rows, first = np.concatenate([self.prev[None], rows]), 1
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        phase = np.zeros_like(rows)
        c = self.cfg
        rc = native.library().pf_pghi_integrate(
            rows.ctypes.data, rows.shape[0], rows.shape[1], float(np.float32(self.floor)), float(np.float32(self.top)),
            float(c.hop_length), float(c.n_fft), float(self.gamma), PGHI_LEVELS, PGHI_BLOCK, first, first + n,
            self.carry.ctypes.data, phase.ctypes.data)
        if rc != 0:
            raise MemoryError("PGHI: out of memory for the kernel's work arrays")
        self.prev = rows[first + n - 1].copy()
        self.pending = self.pending[n:]
        self.done += n
        return phase[first:first + n]

    def push(self, mag: np.ndarray) -> np.ndarray:
        floor = np.float32(self.floor)
        s = np.maximum(np.log(np.maximum(mag.astype(np.float32, copy=False), np.float32(1e-30))), floor)
        self.pending = np.concatenate([self.pending, s])
        n = ((self.done + self.pending.shape[0] - 1) // PGHI_BLOCK) * PGHI_BLOCK - self.done
        return self._run(n, True) if n > 0 else np.zeros((0, self.cfg.n_bins), np.float32)

    def finish(self) -> np.ndarray:
        n = self.pending.shape[0]
        return self._run(n, False) if n > 0 else np.zeros((0, self.cfg.n_bins), np.float32)


class NumpyPhaseStream:
    """Frame-major linear magnitude blocks (frames, bins) in, float32 audio blocks out; the numpy twin of
    :class:`pianoforge.phase.stream.PhaseStream` for :data:`METHODS` (``push`` returns the blocks now final,
    ``finish`` the rest; together ``frames * hop`` samples)."""

    def __init__(self, cfg: AudioConfig, method: str = "pghi+gl", n_iter: int = 4, *, momentum: float = 0.99,
                 block_frames: int = BLOCK_FRAMES) -> None:
        if method not in METHODS:
            raise ValueError(f"the numpy phase stream runs {', '.join(METHODS)}, not {method!r}")
        if n_iter < 0 or momentum < 0:
            raise ValueError(f"n_iter and momentum must be >= 0, got {n_iter} and {momentum}")
        if not available():
            raise RuntimeError("the numpy phase stream needs the C kernels (no C compiler found)")
        self.cfg, self.method, self.momentum = cfg, method, momentum
        self.n_iter = n_iter if method == "pghi+gl" else 0
        self.block = max(PGHI_BLOCK, block_frames // PGHI_BLOCK * PGHI_BLOCK)
        self.ctx = context_frames(cfg, self.n_iter)
        self.pghi = PghiStream(cfg) if method != "zero" else None
        self.m0 = 0
        self.mag = np.zeros((0, cfg.n_bins), np.float32)
        self.init = np.zeros((0, cfg.n_bins), np.complex64)
        self.out = 0

    def _with_phase(self, phase: np.ndarray) -> np.ndarray:
        a = self.init.shape[0]
        return polar(self.mag[a:a + phase.shape[0]], phase)

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Add (frames, bins) linear magnitudes; return the audio blocks now final."""
        if block.ndim != 2 or block.shape[1] != self.cfg.n_bins:
            raise ValueError(f"expected (frames, {self.cfg.n_bins}) blocks, got {tuple(block.shape)}")
        mag = block.astype(np.float32, copy=False)
        self.mag = np.concatenate([self.mag, mag])
        start = mag.astype(np.complex64) if self.pghi is None else self._with_phase(self.pghi.push(mag))
        self.init = np.concatenate([self.init, start])
        out = []
        while self.m0 + self.init.shape[0] >= self.out + self.block + self.ctx:
            out.append(self._emit(self.out + self.block, end=None))
        return out

    def finish(self) -> list[np.ndarray]:
        if self.pghi is not None:
            self.init = np.concatenate([self.init, self._with_phase(self.pghi.finish())])
        end = self.m0 + self.init.shape[0]
        out = []
        while self.out < end:
            out.append(self._emit(min(end, self.out + self.block), end=end))
        return out

    def _emit(self, stop: int, end: int | None) -> np.ndarray:
        lo = max(0, self.out - self.ctx)
        hi = stop + self.ctx if end is None else min(end, stop + self.ctx)
        a = self.init[lo - self.m0:hi - self.m0][None].copy()
        if self.n_iter == 0:
            eng = frames_for(self.cfg, hi - lo)
            y = eng.audio(eng.synth(a))[0]
        else:
            y = iterate(self.mag[lo - self.m0:hi - self.m0][None], a, self.cfg, self.n_iter, self.momentum)[0]
        hop = self.cfg.hop_length
        audio = np.ascontiguousarray(y[(self.out - lo) * hop:(stop - lo) * hop], dtype=np.float32)
        self.out = stop
        keep = max(0, self.out - self.ctx) - self.m0
        self.mag, self.init, self.m0 = self.mag[keep:], self.init[keep:], self.m0 + keep
        return audio
