"""Inference: the streaming audio blocks of :class:`~pianoforge.inference.renderer.PerformRenderer` -- block
encoding (:class:`pianoforge.midi.blocks.BlockEncoder`), windowed network
(:class:`~pianoforge.inference.windows.WindowedNetwork`), streaming phase (:class:`pianoforge.phase.PhaseStream`
on the torch engine, :class:`pianoforge.phase.npstream.NumpyPhaseStream` on the numpy engine where it runs the
method)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from pianoforge.config import Preset
from pianoforge.inference.windows import WindowedNetwork
from pianoforge.midi.score import Score
from pianoforge.models.sampler import NoteSampler


class StreamingBlocks(WindowedNetwork):
    """The audio-block generators of :class:`~pianoforge.inference.renderer.PerformRenderer`, which inherits
    them, and sets the attributes below and ``n_frames``."""

    engine: str
    model: Any
    preset: Preset
    block_frames: int | None

    def _audio_blocks(self, score: Score, method: str, n_iter: int,
                      logmag: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Score -> float32 audio blocks at the model's rate (``frames * hop`` samples in all): block
        encoding, windowed network, streaming phase. Appends (frames_i, bins) log-magnitudes to ``logmag``."""
        if isinstance(self.model, NoteSampler):
            yield from self._audio_blocks_sampler(score, logmag)
            return
        if self.engine == "numpy":
            yield from self._audio_blocks_numpy(score, method, n_iter, logmag)
            return
        import torch

        with torch.inference_mode():
            yield from self._audio_blocks_torch(score, method, n_iter, logmag)

    def _audio_blocks_sampler(self, score: Score, logmag: list[np.ndarray] | None) -> Iterator[np.ndarray]:
        """The learned sampler's blocks: its audio directly, ``block_frames`` (default 1024) frames of samples at
        a time. With ``logmag``, the blocks are also kept and the log-magnitude of the whole render is appended
        at the end (the arrays of a short render; a stream without them holds one block)."""
        from pianoforge.models.sampler import log_magnitude

        a = self.preset.audio
        n = self.n_frames(score) * a.hop_length
        kept: list[np.ndarray] = []
        for y in self.model.stream(score, n, (self.block_frames or 1024) * a.hop_length):
            if logmag is not None:
                kept.append(y)
            yield y
        if logmag is not None:
            logmag.append(log_magnitude(np.concatenate([np.zeros(0, np.float32), *kept]), a))

    def _audio_blocks_torch(self, score: Score, method: str, n_iter: int,
                            logmag: list[np.ndarray] | None) -> Iterator[np.ndarray]:
        from pianoforge.audio.spectral import inverse_log_magnitude
        from pianoforge.midi.blocks import BlockEncoder
        from pianoforge.phase import PhaseStream

        a = self.preset.audio
        t = self.n_frames(score)
        enc = BlockEncoder(score, self.preset.score, a.frame_rate, t)
        direct = method == "direct"
        kw = {} if self.block_frames is None else {"block_frames": self.block_frames}
        ps = None if direct and self.model.cfg.output == "time" else PhaseStream(a, method, n_iter, **kw)
        for out in self.outputs(enc.block, t):
            if logmag is not None:
                logmag.append(self.model.to_logmag(out[None])[0].numpy())
            if ps is None:  # per-frame waveform samples: nothing to stitch
                yield self.model.to_audio(out[None])[0].numpy().astype(np.float32)
                continue
            spec = (self.model.to_complex(out[None])[0].T if direct else
                    inverse_log_magnitude(self.model.to_logmag(out[None])[0], a.log_eps))
            for y in ps.push(spec):
                yield y.numpy()
        for y in ps.finish() if ps is not None else ():
            yield y.numpy()

    def _audio_blocks_numpy(self, score: Score, method: str, n_iter: int,
                            logmag: list[np.ndarray] | None) -> Iterator[np.ndarray]:
        """The numpy engine's :meth:`_audio_blocks`: the numpy phase stream where it runs ``method`` (with the C
        kernels), else the torch stream on the numpy model's magnitudes (``griffinlim``; no C compiler)."""
        from pianoforge.midi.blocks import BlockEncoder
        from pianoforge.phase import npstream

        a = self.preset.audio
        t = self.n_frames(score)
        enc = BlockEncoder(score, self.preset.score, a.frame_rate, t,
                           envelopes=getattr(self.model, "reads_envelopes", True))
        kw = {} if self.block_frames is None else {"block_frames": self.block_frames}
        if method in npstream.METHODS and npstream.available():
            ps: Any = npstream.NumpyPhaseStream(a, method, n_iter, **kw)
            wrap = unwrap = None
        else:
            import torch

            from pianoforge.phase import PhaseStream

            ps, wrap, unwrap = PhaseStream(a, method, n_iter, **kw), torch.from_numpy, lambda y: y.numpy()
        eps = np.float32(a.log_eps)
        for out in self._outputs(enc.block, t):
            lm = self.model.to_logmag(out)
            if logmag is not None:
                logmag.append(lm)
            mag = np.maximum(np.exp(lm) - eps, np.float32(0.0))
            for y in ps.push(mag if wrap is None else wrap(mag)):
                yield y if unwrap is None else unwrap(y)
        for y in ps.finish():
            yield y if unwrap is None else unwrap(y)
