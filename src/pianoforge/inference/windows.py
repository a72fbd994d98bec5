"""Inference: the windowed network of :class:`~pianoforge.inference.renderer.PerformRenderer` -- windows of
``chunk_seconds`` overlapping by ``overlap_seconds`` (:meth:`WindowedNetwork.chunk_plan`), run
:data:`STREAM_FRAMES` frames of windows at a time on the renderer's engine, linearly cross-faded in the model's
output space (no seams)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pianoforge.config import Preset

STREAM_FRAMES = 1024
"""Frames of network windows run as one batch while streaming: ``max(1, STREAM_FRAMES // window)`` windows
(4 x 4 s windows of the dense default, 2 x 8 s windows of the notes head: ~16 s of audio a batch, one phase
block; more only grows the working set, the batch, its output and the phase stream's pending frames: peak RSS
of a long render 243 MB at 2048, 157 MB at 1024, docs/perform.md)."""


class WindowedNetwork:
    """The network windows of :class:`~pianoforge.inference.renderer.PerformRenderer`, which inherits them and
    sets the attributes below."""

    engine: str
    model: Any
    preset: Preset
    chunk_seconds: float
    overlap_seconds: float

    def chunk_plan(self, t: int, chunk_frames: int | None = None,
                   overlap_frames: int | None = None) -> tuple[list[int], int, np.ndarray | None]:
        """Network windows over ``t`` frames: their starts, their length ``w`` and their cross-fade weights
        (n, w), or ``([0], t, None)`` for one pass (``chunk_frames=0`` or a piece no longer than a window).

        Consecutive windows overlap by ``overlap_frames`` (the last one by more, so that it ends at ``t``); in
        each overlap a quarter at either end gets no weight (chunk edges: conv padding, recurrent warm-up)
        and a linear ramp hands over in between.
        """
        fr = self.preset.audio.frame_rate
        w = int(round(self.chunk_seconds * fr)) if chunk_frames is None else chunk_frames
        o = int(round(self.overlap_seconds * fr)) if overlap_frames is None else overlap_frames
        if w <= 0 or t <= w:
            return [0], t, None
        o = min(max(o, 1), w // 2)
        step = w - o
        starts = list(range(0, max(t - o, 1), step))
        if starts[-1] + w < t:
            starts.append(t - w)
        weights = np.ones((len(starts), w), np.float32)
        for i in range(1, len(starts)):
            k = starts[i - 1] + w - starts[i]  # frames shared by chunks i-1 and i
            m = k // 4  # margin: chunk edges (conv padding, recurrent warm-up) get no weight at all
            ramp = np.linspace(0, 1, k - 2 * m + 2, dtype=np.float32)[1:-1]
            weights[i, :m] = 0
            weights[i, m:k - m] = ramp
            weights[i - 1, w - k:w - k + m] = 1
            weights[i - 1, w - k + m:w - m] = 1 - ramp
            weights[i - 1, w - m:] = 0
        return starts, w, weights

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """(n, w, channels) float32 -> (n, w, D) float32 raw output, on this renderer's engine."""
        if self.engine == "numpy":
            return self.model(batch)
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()

    def _outputs(self, source: Callable[[int, int], np.ndarray], t: int, chunk_frames: int | None = None,
                 overlap_frames: int | None = None, group: int | None = None) -> Iterator[np.ndarray]:
        """:meth:`outputs` as float32 arrays, whatever the engine."""
        starts, w, weights = self.chunk_plan(t, chunk_frames, overlap_frames)
        group = max(1, STREAM_FRAMES // w) if group is None else group
        if weights is None:
            yield self._run(np.ascontiguousarray(source(0, t), dtype=np.float32)[None])[0]
            return
        f0, out, norm = 0, np.zeros((0, self.model.out_dim), np.float32), np.zeros((0, 1), np.float32)
        for g0 in range(0, len(starts), group):
            idx = range(g0, min(g0 + group, len(starts)))
            a, end = starts[idx[0]], min(starts[idx[-1]] + w, t)
            x = np.ascontiguousarray(source(a, end), dtype=np.float32)
            batch = np.zeros((len(idx), w, x.shape[1]), np.float32)
            for j, i in enumerate(idx):
                seg = x[starts[i] - a:starts[i] - a + w]
                batch[j, :seg.shape[0]] = seg
            y = self._run(batch)  # (n, w, D)
            grow = end - f0 - out.shape[0]
            out = np.concatenate([out, np.zeros((grow, y.shape[-1]), np.float32)])
            norm = np.concatenate([norm, np.zeros((grow, 1), np.float32)])
            for j, i in enumerate(idx):
                s, n = starts[i] - f0, min(w, t - starts[i])
                out[s:s + n] += y[j, :n] * weights[i, :n, None]
                norm[s:s + n] += weights[i, :n, None]
            final = (starts[idx[-1] + 1] if idx[-1] + 1 < len(starts) else t) - f0  # no later window reaches here
            yield out[:final] / np.maximum(norm[:final], np.float32(1e-8))
            out, norm, f0 = out[final:], norm[final:], f0 + final

    def outputs(self, source: Callable[[int, int], np.ndarray], t: int, chunk_frames: int | None = None,
                overlap_frames: int | None = None, group: int | None = None) -> Iterator[Any]:
        """Raw model output, block by block in order, for a ``t``-frame encoding read through
        ``source(a, b) -> (b - a, channels)`` (the frames ``[a, b)``). Yields (frames_i, D) blocks (torch
        tensors on the torch engine, float32 arrays on the numpy engine) that together cover ``[0, t)``;
        ``group`` windows of :meth:`chunk_plan` (default ``STREAM_FRAMES // window``) run as one batch, so memory is
        bounded by ``group`` windows whatever ``t`` is (one pass: the whole encoding at once)."""
        blocks = self._outputs(source, t, chunk_frames, overlap_frames, group)
        if self.engine == "numpy":
            yield from blocks
            return
        import torch

        for b in blocks:
            yield torch.from_numpy(b)

    def predict(self, frames: np.ndarray, chunk_frames: int | None = None, overlap_frames: int | None = None) -> Any:
        """(T, channels) encoding -> (T, D) raw model output (a torch tensor on the torch engine, an array on the
        numpy engine), chunked with cross-faded overlaps (all windows in one batch). ``chunk_frames=0`` runs
        the whole sequence in one pass (the seam-free reference)."""
        t = frames.shape[0]
        out = np.concatenate(list(self._outputs(lambda a, b: frames[a:b], t, chunk_frames, overlap_frames,
                                                group=t + 1)))
        if self.engine == "numpy":
            return out
        import torch

        return torch.from_numpy(out)
