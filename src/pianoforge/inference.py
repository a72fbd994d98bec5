"""Inference: render whole MIDI files with a perform checkpoint. Never imports training code.

``PerformRenderer.from_checkpoint(path)`` needs nothing but the checkpoint (weights, normalization
buffers and the full preset live inside it). Rendering:

1. score -> frame encoding (T, channels), T = frames up to the last event + the release tail, made block
   by block from the note list (:class:`pianoforge.midi.blocks.BlockEncoder`, equal to ``encode``);
2. windowed inference: windows of ``chunk_seconds`` overlapping by ``overlap_seconds``, run
   :data:`STREAM_FRAMES` frames of windows at a time, linearly cross-faded in the model's output space (no seams);
3. output -> magnitude (or complex / waveform) -> streaming phase reconstruction
   (:class:`pianoforge.phase.PhaseStream`) -> audio of exactly T * hop samples, starting at the score's
   t = 0 (sample-aligned with the FluidSynth reference of the same MIDI);
4. optionally resampled (streaming), written as it goes (atomic, peak-safe).

Every stage holds a bounded number of frames, so memory does not grow with the piece
(:meth:`PerformRenderer.stream`); :meth:`PerformRenderer.render_score` collects the same blocks into arrays.

Engines (:data:`ENGINES`, ``from_checkpoint(engine=...)``, ``pianoforge render --engine``): ``numpy`` runs a
notes-head checkpoint without a residual trunk (the shipped default) on :class:`pianoforge.models.notes_numpy.
NumpyNotesModel` and the phase on :class:`pianoforge.phase.npstream.NumpyPhaseStream`, so the render never
imports torch (start-up); ``torch`` runs :class:`pianoforge.models.perform.PerformModel`; ``auto`` (the default)
takes numpy where the checkpoint qualifies, torch otherwise. Both give the same audio to float rounding
(tests/test_numpy_engine.py). This module imports torch only where the torch engine needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pianoforge.audio.io import resample
from pianoforge.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_checkpoint_numpy,
    read_checkpoint_meta,
)
from pianoforge.config import INFERENCE_PHASES, InferenceConfig, Preset
from pianoforge.errors import ConfigError
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import Score, load_score
from pianoforge.models import notes_numpy
from pianoforge.names import ENGINES

if TYPE_CHECKING:
    from pretty_midi import PrettyMIDI

    from pianoforge.models.perform import PerformModel

DEFAULT_CHECKPOINT = "perform-default.safetensors"
PHASES = INFERENCE_PHASES

STREAM_FRAMES = 1024
"""Frames of network windows run as one batch while streaming: ``max(1, STREAM_FRAMES // window)`` windows
(4 x 4 s windows of the dense default, 2 x 8 s windows of the notes head: ~16 s of audio a batch, one phase
block; more only grows the working set, the batch, its output and the phase stream's pending frames: peak RSS
of a long render 243 MB at 2048, 157 MB at 1024, docs/perform.md)."""
KEEP_SECONDS = 600.0
"""``render_midi`` with a WAV path also returns the arrays for pieces up to this long (10 min: ~120 MB)."""


def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path:
    """Path of a checkpoint shipped inside the package (``pianoforge/weights/``)."""
    p = Path(str(resources.files("pianoforge") / "weights" / name))
    if not p.is_file():
        raise CheckpointError(p, "no shipped checkpoint of that name; pass --checkpoint PATH")
    return p


@dataclass
class RenderResult:
    audio: np.ndarray  # (samples,) float32 at ``sample_rate``
    sample_rate: int
    seconds: float  # audio duration
    wall_s: float  # wall time of the whole render (encode, network, phase)
    logmag: np.ndarray  # (frames, bins) predicted natural-log magnitude

    @property
    def realtime_factor(self) -> float:
        return self.seconds / max(self.wall_s, 1e-9)


class PerformRenderer:
    block_frames: int | None = None
    """Frames per streaming phase block (None: :data:`pianoforge.phase.stream.BLOCK_FRAMES`)."""

    def __init__(self, model: PerformModel | notes_numpy.NumpyNotesModel, preset: Preset,
                 meta: dict[str, Any] | None = None) -> None:
        self.engine = "numpy" if isinstance(model, notes_numpy.NumpyNotesModel) else "torch"
        self.model = model if self.engine == "numpy" else model.eval()
        self.preset = preset
        self.meta = meta or {}
        inf = InferenceConfig.from_preset(preset)  # a preset without the section renders like `default`
        self.chunk_seconds, self.overlap_seconds = inf.chunk_seconds, inf.overlap_seconds
        self.phase, self.iterations = inf.phase, inf.iterations

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, engine: str = "auto") -> PerformRenderer:
        """Rebuild the model from an inference checkpoint (default: the shipped ``default`` model) on
        ``engine`` (:data:`ENGINES`; ``auto``: numpy where the checkpoint qualifies, see the module docstring).
        ``engine="numpy"`` with a checkpoint it cannot run is a :class:`CheckpointError`."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
        p = Path(path) if path else shipped_checkpoint()
        meta = read_checkpoint_meta(p)
        fits = isinstance(meta["config"], dict) and isinstance(meta["config"].get("model"), dict) \
            and notes_numpy.qualifies(meta["config"]["model"])
        if engine == "numpy" and not fits:
            raise CheckpointError(p, "the numpy engine runs notes-head checkpoints without note_residual only; "
                                     "use --engine torch (or auto)")
        use_numpy = fits and engine != "torch"
        tensors, meta = (load_checkpoint_numpy if use_numpy else load_checkpoint)(p, kind="perform")
        cfg = meta["config"]
        try:
            preset = Preset.from_dict(cfg["preset"], str(p))
            if use_numpy:
                model: Any = notes_numpy.NumpyNotesModel.from_tensors(cfg["model"], preset.audio, tensors)
            else:
                from pianoforge.models.perform import PerformModel, PerformModelConfig

                model = PerformModel(PerformModelConfig.from_dict(cfg["model"]), preset.audio)
                model.load_state_dict(tensors)
            InferenceConfig.from_preset(preset)
        except (KeyError, ValueError, RuntimeError, ConfigError) as e:
            raise CheckpointError(p, f"checkpoint does not match this pianoforge's models ({str(e)[:120]})") from e
        return cls(model, preset, cfg)

    @property
    def sample_rate(self) -> int:
        return self.preset.audio.sample_rate

    def n_frames(self, score: Score) -> int:
        return frames_for(score.end_time + self.preset.render.release_seconds, self.preset.audio.frame_rate)

    def encode(self, score: Score) -> np.ndarray:
        """Score -> (T, channels) float32 frame encoding, T = :meth:`n_frames`."""
        return encode(score, self.preset.score, self.preset.audio.frame_rate, self.n_frames(score))

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

    def _method(self, phase: str | None, iterations: int | None) -> tuple[str, int]:
        """The phase method and iteration count a render uses; ValueError for one this model cannot use."""
        from pianoforge.names import PHASE_METHODS

        method = phase or self.phase
        n_iter = self.iterations if iterations is None else iterations
        if method == "direct" or self.model.carries_phase:
            if not self.model.carries_phase:
                raise ValueError(f"phase 'direct' needs a complex or time model; this one predicts {self.model.cfg.output}")
            return "direct", 0
        if method not in PHASE_METHODS:
            raise ValueError(f"unknown phase method {method!r} (one of {', '.join(PHASES)})")
        if n_iter < 0:
            raise ValueError(f"iterations must be >= 0, got {n_iter}")
        return method, n_iter

    def synthesize(self, out: Any, phase: str | None = None, iterations: int | None = None) -> np.ndarray:
        """(T, D) raw output (a tensor or an array) -> (T * hop,) float32 audio, the whole plane at once
        (:meth:`stream` does it in blocks; this whole-plane reference runs on torch whatever the engine)."""
        import torch

        from pianoforge import phase as ph
        from pianoforge.audio.spectral import inverse_log_magnitude

        method, n_iter = self._method(phase, iterations)
        with torch.inference_mode():
            if self.engine == "numpy":
                lm = torch.from_numpy(self.model.to_logmag(np.asarray(out, dtype=np.float32)))
            elif method == "direct":
                return self.model.to_audio(out[None])[0].numpy().astype(np.float32)
            else:
                lm = self.model.to_logmag(out[None])[0]
            mag = inverse_log_magnitude(lm, self.preset.audio.log_eps).T  # (bins, T)
            return ph.reconstruct(mag.contiguous(), self.preset.audio, method, n_iter).numpy().astype(np.float32)

    def _audio_blocks(self, score: Score, method: str, n_iter: int,
                      logmag: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Score -> float32 audio blocks at the model's rate (``frames * hop`` samples in all): block
        encoding, windowed network, streaming phase. Appends (frames_i, bins) log-magnitudes to ``logmag``."""
        if self.engine == "numpy":
            yield from self._audio_blocks_numpy(score, method, n_iter, logmag)
            return
        import torch

        with torch.inference_mode():
            yield from self._audio_blocks_torch(score, method, n_iter, logmag)

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

    def stream(self, score: Score | str | Path | PrettyMIDI, phase: str | None = None, iterations: int | None = None,
               sample_rate: int | None = None) -> Iterator[np.ndarray]:
        """Render a score (or MIDI path) as an iterator of float32 audio blocks (about 16 s each at the
        default preset), with memory independent of the piece's length: encoding, network and phase run
        block by block with bounded look-ahead (docs/perform.md, "Streaming"). Their concatenation equals
        :meth:`render_score`'s audio. Bad arguments raise ValueError before the first block."""
        score = load_score(score)
        method, n_iter = self._method(phase, iterations)
        blocks = self._audio_blocks(score, method, n_iter)
        if sample_rate and sample_rate != self.sample_rate:
            from pianoforge.audio.stream import resample_blocks

            blocks = resample_blocks(blocks, self.sample_rate, sample_rate)
        return blocks

    def render_score(self, score: Score, phase: str | None = None, iterations: int | None = None) -> RenderResult:
        """Render to arrays (audio and predicted log-magnitude); for long pieces use :meth:`stream` or
        :meth:`render_midi` with a WAV path."""
        t0 = time.perf_counter()
        method, n_iter = self._method(phase, iterations)
        logmag: list[np.ndarray] = []
        audio = np.concatenate([np.zeros(0, np.float32), *self._audio_blocks(score, method, n_iter, logmag)])
        wall = time.perf_counter() - t0
        return RenderResult(audio, self.sample_rate, len(audio) / self.sample_rate, wall, np.concatenate(logmag))

    def render_midi(self, midi_path: str | Path | Score | PrettyMIDI, wav_path: str | Path | None = None, *,
                    sample_rate: int | None = None, phase: str | None = None, iterations: int | None = None,
                    keep_arrays: bool | None = None) -> RenderResult:
        """Render a MIDI file (or a ``pretty_midi.PrettyMIDI``, or a :class:`Score`). Without ``wav_path``: :meth:`render_score` (arrays), resampled to
        ``sample_rate``. With it, the audio streams into the file as it is made (atomically, peak-safe; a
        failure leaves no file) and the result holds the audio and log-magnitude arrays only when
        ``keep_arrays`` (default: for pieces up to :data:`KEEP_SECONDS`); otherwise they are empty and
        memory stays flat at any length."""
        t0 = time.perf_counter()
        score = load_score(midi_path)
        if wav_path is None:
            res = self.render_score(score, phase, iterations)
            if sample_rate and sample_rate != res.sample_rate:
                res.audio = resample(res.audio, res.sample_rate, sample_rate)
                res.sample_rate = sample_rate
            res.wall_s = time.perf_counter() - t0
            return res
        from pianoforge.audio.stream import resample_blocks, write_audio_stream

        method, n_iter = self._method(phase, iterations)
        rate = sample_rate or self.sample_rate
        if keep_arrays is None:
            keep_arrays = self.n_frames(score) / self.preset.audio.frame_rate <= KEEP_SECONDS
        logmag: list[np.ndarray] | None = [] if keep_arrays else None
        kept: list[np.ndarray] = []
        blocks = resample_blocks(self._audio_blocks(score, method, n_iter, logmag), self.sample_rate, rate)
        n, _ = write_audio_stream(wav_path, (kept.append(b) or b if keep_arrays else b for b in blocks), rate)
        audio = np.concatenate([np.zeros(0, np.float32), *kept])
        lm = np.concatenate(logmag) if logmag else np.zeros((0, self.preset.audio.n_bins), np.float32)
        return RenderResult(audio, rate, n / rate, time.perf_counter() - t0, lm)


def render_midi(midi_path: str | Path | Score | PrettyMIDI, wav_path: str | Path | None = None,
                checkpoint: str | Path | None = None, **kwargs: Any) -> RenderResult:
    """Python API: render ``midi_path`` (a file, a ``pretty_midi.PrettyMIDI`` or a :class:`Score`) with
    ``checkpoint`` (default: the shipped model); also write ``wav_path`` when given. The audio is
    ``result.audio`` at ``result.sample_rate``."""
    return PerformRenderer.from_checkpoint(checkpoint).render_midi(midi_path, wav_path, **kwargs)


def figure4(path: str | Path, renderer: PerformRenderer, score: Score, predicted_logmag: np.ndarray,
            reference_audio: np.ndarray | None = None) -> Path:
    """The paper's Figure 4: piano roll, predicted spectrogram, FluidSynth reference spectrogram."""
    from pianoforge.audio.render import render_score
    from pianoforge.audio.spectral import log_magnitude_np
    from pianoforge.midi.encoding import piano_roll
    from pianoforge.viz import score_and_spectrograms

    a = renderer.preset.audio
    n = predicted_logmag.shape[0]
    if reference_audio is None:
        reference_audio = render_score(score, a.sample_rate, renderer.preset.render, n * a.hop_length)
    ref = log_magnitude_np(reference_audio, a)
    return score_and_spectrograms(path, piano_roll(renderer.encode(score)),
                                  [("predicted (neural)", predicted_logmag), ("FluidSynth reference", ref)], a,
                                  title=Path(score.source).name if score.source else "")
