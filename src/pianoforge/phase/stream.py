"""Streaming phase reconstruction: a magnitude spectrogram that arrives frame block by frame block -> audio
blocks, with bounded memory and bounded look-ahead, equal to the whole-plane methods.

Two facts make it exact rather than approximately seamless:

- PGHI integrates the plane in 16-frame blocks, each started from the integrated last frame of the block
  before (:mod:`pianoforge.phase.pghi`). :class:`PghiStream` keeps that frame's phase (float64) and log-
  magnitude and continues from it, one frame of look-ahead for the centred time derivative, so it
  reproduces the whole-plane integration bit for bit. The only thing it cannot know in advance is the
  piece's peak: it floors and quantizes against the full-scale magnitude (:data:`pghi.STREAM_TOL`)
  instead, like ``pghi(..., reference=full_scale(cfg))``.
- One Griffin-Lim iteration couples a frame with the ``n_fft / hop - 1`` frames on each side of it. So
  ``n_iter`` iterations over a block plus :func:`context_frames` frames on each side, started from the same
  initial phase, give the interior of the block exactly as the whole piece would: :class:`PhaseStream` runs
  overlapping blocks and keeps only each block's interior audio (no cross-fade; nothing to blend).

Memory: a block of ``block_frames`` (default 1024, ~16 s at 62.5 frames/s) plus twice the context, whatever
the piece's length. Look-ahead: the context (24 frames at 4 iterations of the default preset, 0.4 s) plus one
PGHI block of 16 frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from pianoforge.config import INFERENCE_PHASES, AudioConfig
from pianoforge.phase.engine import Frames, polar
from pianoforge.phase.griffinlim import iterate
from pianoforge.phase.params import (
    BLOCK_FRAMES as BLOCK_FRAMES,  # re-exported: defined with the other constants
)
from pianoforge.phase.params import context_frames
from pianoforge.phase.pghi import PGHI_BLOCK, STREAM_TOL, full_scale, gamma_of, integrate, log_floor

STREAM_METHODS = INFERENCE_PHASES
"""What :class:`PhaseStream` takes: the magnitude methods, and ``direct`` (complex frames in, their iSTFT)."""

RANDOM_TILE = 256
"""``griffinlim`` from random phase: initial phases are drawn per tile of this many frames, seeded by the tile
index, so every frame gets the same start whichever block computes it."""


class PghiStream:
    """PGHI phase of a frame-major magnitude given in pieces: ``push`` (frames, bins) float32 blocks, get back
    the phases (frames, bins) float32 of every frame integrated so far, in order; ``finish`` integrates the
    rest. The result equals ``pghi(mag, cfg, tol, gamma, reference=full_scale(cfg))`` on the whole plane."""

    def __init__(self, cfg: AudioConfig, tol: float = STREAM_TOL, gamma: float | None = None) -> None:
        self.cfg, self.gamma = cfg, gamma_of(cfg, gamma)
        ref = full_scale(cfg)
        self.floor, self.top = math.log(ref * tol), math.log(ref)
        self.carry = np.zeros(cfg.n_bins)  # window-centred float64 phase of frame done - 1
        self.prev: torch.Tensor | None = None  # floored log-magnitude of frame done - 1
        self.pending = torch.zeros(0, cfg.n_bins)  # log-magnitudes of frames done.. (not integrated yet)
        self.done = 0

    def _run(self, n: int, lookahead: bool) -> torch.Tensor:
        """Integrate the first ``n`` pending frames (one more pending frame serves as look-ahead)."""
        rows = self.pending[:n + 1] if lookahead else self.pending[:n]
        first = 0
        if self.prev is not None:
            rows, first = torch.cat([self.prev[None], rows]), 1
        rows = rows.contiguous()
        phase = torch.zeros_like(rows)
        integrate(rows, self.cfg, self.gamma, self.floor, self.top, first, first + n, self.carry, phase)
        self.prev = rows[first + n - 1].clone()
        self.pending = self.pending[n:]
        self.done += n
        return phase[first:first + n]

    def push(self, mag: torch.Tensor) -> torch.Tensor:
        """(frames, bins) linear magnitude -> phases of the frames now integrated (possibly none)."""
        self.pending = torch.cat([self.pending, log_floor(mag.to(torch.float32), self.floor)])
        n = ((self.done + self.pending.shape[0] - 1) // PGHI_BLOCK) * PGHI_BLOCK - self.done
        return self._run(n, True) if n > 0 else torch.zeros(0, self.cfg.n_bins)

    def finish(self) -> torch.Tensor:
        n = self.pending.shape[0]
        return self._run(n, False) if n > 0 else torch.zeros(0, self.cfg.n_bins)


def _random_phase(start: int, stop: int, bins: int, seed: int) -> torch.Tensor:
    """(stop - start, bins) uniform phases in [0, 2 pi), the same for a frame whichever range asks for it."""
    tiles = []
    for j in range(start // RANDOM_TILE, (stop - 1) // RANDOM_TILE + 1):
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + j)
        tiles.append(2 * math.pi * torch.rand(RANDOM_TILE, bins, generator=g))
    off = start - (start // RANDOM_TILE) * RANDOM_TILE
    return torch.cat(tiles)[off:off + stop - start]


class PhaseStream:
    """Frame-major spectrogram blocks in, audio blocks out (see the module docstring).

    ``method``: one of :data:`STREAM_METHODS`; the magnitude methods take (frames, bins) real linear
    magnitudes, ``direct`` takes (frames, bins) complex STFT frames. ``push`` returns the audio blocks
    (float32 (samples,)) that are final; ``finish`` returns the rest. All blocks together hold exactly
    ``frames * hop`` samples, equal (to float rounding) to ``reconstruct`` / ``direct`` on the whole plane
    (``pghi`` and ``pghi+gl``: with the streaming PGHI floor; ``griffinlim``: with per-tile random phases).
    """

    def __init__(self, cfg: AudioConfig, method: str = "pghi+gl", n_iter: int = 4, *, momentum: float = 0.99,
                 seed: int = 0, block_frames: int = BLOCK_FRAMES) -> None:
        if method not in STREAM_METHODS:
            raise ValueError(f"unknown phase method {method!r}; known: {', '.join(STREAM_METHODS)}")
        if n_iter < 0 or momentum < 0:
            raise ValueError(f"n_iter and momentum must be >= 0, got {n_iter} and {momentum}")
        self.cfg, self.method, self.momentum, self.seed = cfg, method, momentum, seed
        self.n_iter = n_iter if method in ("pghi+gl", "griffinlim") else 0
        self.block = max(PGHI_BLOCK, block_frames // PGHI_BLOCK * PGHI_BLOCK)
        self.ctx = context_frames(cfg, self.n_iter)
        self.pghi = PghiStream(cfg) if method in ("pghi", "pghi+gl") else None
        self.m0 = 0  # absolute frame of row 0 of the buffers
        self.mag = torch.zeros(0, cfg.n_bins)  # |X| of frames m0.. (all received)
        self.init = torch.zeros(0, cfg.n_bins, dtype=torch.complex64)  # start point of frames m0..
        self.out = 0  # frames whose audio has been returned

    def _starts(self, block: torch.Tensor) -> torch.Tensor:
        """Initial estimates (complex) of the frames that have become ready with ``block`` pushed."""
        if self.method == "direct":
            return block.to(torch.complex64)
        mag = block.to(torch.float32)
        if self.method == "zero":
            return mag.to(torch.complex64)
        if self.method == "griffinlim":
            a = self.m0 + self.mag.shape[0] - mag.shape[0]
            return polar(mag, _random_phase(a, a + mag.shape[0], self.cfg.n_bins, self.seed))
        assert self.pghi is not None
        phase = self.pghi.push(mag)
        return self._with_phase(phase)

    def _with_phase(self, phase: torch.Tensor) -> torch.Tensor:
        a = self.init.shape[0]  # rows of mag already given a start point
        return polar(self.mag[a:a + phase.shape[0]], phase)

    def push(self, block: torch.Tensor) -> list[torch.Tensor]:
        """Add (frames, bins) frames; return the audio blocks now final."""
        if block.dim() != 2 or block.shape[1] != self.cfg.n_bins:
            raise ValueError(f"expected (frames, {self.cfg.n_bins}) blocks, got {tuple(block.shape)}")
        if self.method == "direct":
            self.mag = torch.cat([self.mag, torch.zeros(block.shape[0], self.cfg.n_bins)])
        else:
            self.mag = torch.cat([self.mag, block.to(torch.float32)])
        self.init = torch.cat([self.init, self._starts(block)])
        out = []
        while self.m0 + self.init.shape[0] >= self.out + self.block + self.ctx:
            out.append(self._emit(self.out + self.block, end=None))
        return out

    def finish(self) -> list[torch.Tensor]:
        """Return the remaining audio blocks (the piece ends with the frames pushed so far)."""
        if self.pghi is not None:
            self.init = torch.cat([self.init, self._with_phase(self.pghi.finish())])
        end = self.m0 + self.init.shape[0]
        out = []
        while self.out < end:
            out.append(self._emit(min(end, self.out + self.block), end=end))
        return out

    def _emit(self, stop: int, end: int | None) -> torch.Tensor:
        """Audio of frames [out, stop), computed over the block plus its context, then drop what is done."""
        lo = max(0, self.out - self.ctx)
        hi = stop + self.ctx if end is None else min(end, stop + self.ctx)
        a = self.init[lo - self.m0:hi - self.m0].clone()[None]
        if self.method == "direct" or self.n_iter == 0:
            eng = Frames(self.cfg, hi - lo)
            y = eng.audio(eng.synth(a))[0]
        else:
            mt = self.mag[lo - self.m0:hi - self.m0][None].contiguous()
            y = iterate(mt, a, self.cfg, self.n_iter, self.momentum)[0]
        hop = self.cfg.hop_length
        audio = y[(self.out - lo) * hop:(stop - lo) * hop].clone()
        self.out = stop
        keep = max(0, self.out - self.ctx) - self.m0  # rows no block needs any more
        self.mag, self.init, self.m0 = self.mag[keep:], self.init[keep:], self.m0 + keep
        return audio


def stream_reconstruct(blocks: Iterable[torch.Tensor], cfg: AudioConfig, method: str = "pghi+gl",
                       n_iter: int = 4, **kwargs: object) -> Iterator[torch.Tensor]:
    """Generator form of :class:`PhaseStream`: (frames, bins) blocks in, float32 audio blocks out."""
    ps = PhaseStream(cfg, method, n_iter, **kwargs)  # type: ignore[arg-type]
    for b in blocks:
        yield from ps.push(b)
    yield from ps.finish()
