"""Inference: :class:`PerformRenderer` -- loading a perform checkpoint on an engine, the phase method of a
render, and the renders themselves (:meth:`~PerformRenderer.stream`, :meth:`~PerformRenderer.render_score`,
:meth:`~PerformRenderer.render_midi`); its network windows and audio blocks are in :mod:`.windows` and
:mod:`.blocks`."""

from __future__ import annotations

import time
from collections.abc import Iterator
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
from pianoforge.config import InferenceConfig, Preset
from pianoforge.errors import ConfigError
from pianoforge.inference.blocks import StreamingBlocks
from pianoforge.inference.common import PHASES, RenderResult, shipped_checkpoint
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import Score, load_score
from pianoforge.models import notes_numpy
from pianoforge.models.sampler import NoteSampler
from pianoforge.names import ENGINES

if TYPE_CHECKING:
    from pretty_midi import PrettyMIDI

    from pianoforge.models.perform import PerformModel

KEEP_SECONDS = 600.0
"""``render_midi`` with a WAV path also returns the arrays for pieces up to this long (10 min: ~120 MB)."""


class PerformRenderer(StreamingBlocks):
    block_frames: int | None = None
    """Frames per streaming phase block (None: :data:`pianoforge.phase.stream.BLOCK_FRAMES`)."""

    def __init__(self, model: PerformModel | notes_numpy.NumpyNotesModel | NoteSampler, preset: Preset,
                 meta: dict[str, Any] | None = None) -> None:
        self.engine = "numpy" if isinstance(model, (notes_numpy.NumpyNotesModel, NoteSampler)) else "torch"
        self.model = model if self.engine == "numpy" else model.eval()
        self.preset = preset
        self.meta = meta or {}
        inf = InferenceConfig.from_preset(preset)  # a preset without the section renders like `default`
        self.chunk_seconds, self.overlap_seconds = inf.chunk_seconds, inf.overlap_seconds
        self.phase, self.iterations = inf.phase, inf.iterations

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, engine: str = "auto") -> PerformRenderer:
        """Rebuild the model from an inference checkpoint (default: the shipped ``default`` model) on
        ``engine`` (:data:`ENGINES`; ``auto``: numpy where the checkpoint qualifies, see the package docstring).
        ``engine="numpy"`` with a checkpoint it cannot run is a :class:`CheckpointError`."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")
        p = Path(path) if path else shipped_checkpoint()
        meta = read_checkpoint_meta(p)
        model_d = meta["config"].get("model") if isinstance(meta["config"], dict) else None
        sampler = isinstance(model_d, dict) and model_d.get("head") == "sampler"
        fits = isinstance(model_d, dict) and (sampler or notes_numpy.qualifies(model_d))
        if engine == "numpy" and not fits:
            raise CheckpointError(p, "the numpy engine runs sampler checkpoints and notes-head checkpoints without "
                                     "note_residual only; use --engine torch (or auto)")
        if engine == "torch" and sampler:
            raise CheckpointError(p, "a sampler checkpoint has no torch form; use --engine auto (or numpy)")
        use_numpy = fits and engine != "torch"
        tensors, meta = (load_checkpoint_numpy if use_numpy else load_checkpoint)(p, kind="perform")
        cfg = meta["config"]
        try:
            preset = Preset.from_dict(cfg["preset"], str(p))
            if sampler:
                model: Any = NoteSampler.from_tensors(cfg["model"], preset.audio, tensors)
            elif use_numpy:
                model = notes_numpy.NumpyNotesModel.from_tensors(cfg["model"], preset.audio, tensors)
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
