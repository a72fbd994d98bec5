"""Inference: render whole MIDI files with a perform checkpoint. Never imports training code.

``PerformRenderer.from_checkpoint(path)`` needs nothing but the checkpoint (weights, normalization
buffers and the full preset live inside it). Rendering:

1. score -> frame encoding (T, channels), T = frames up to the last event + the release tail;
2. chunked inference: windows of ``chunk_seconds`` overlapping by ``overlap_seconds``, run as one batch,
   linearly cross-faded in the model's output space (so any length works with no seams);
3. output -> magnitude (or complex / waveform) -> phase reconstruction -> audio of exactly T * hop
   samples, starting at the score's t = 0 (sample-aligned with the FluidSynth reference of the same
   MIDI, which the data pipeline renders with the same length);
4. peak-safe save, optionally resampled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pianoforge.audio.io import resample, save_audio
from pianoforge.audio.spectral import inverse_log_magnitude
from pianoforge.checkpoint import CheckpointError, load_checkpoint
from pianoforge.config import Preset
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import Score, load_score
from pianoforge.models.perform import PerformModel, PerformModelConfig

if TYPE_CHECKING:
    from pretty_midi import PrettyMIDI

DEFAULT_CHECKPOINT = "perform-default.safetensors"
PHASES = ("pghi+gl", "griffinlim", "pghi", "zero", "direct")


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
    def __init__(self, model: PerformModel, preset: Preset, meta: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.preset = preset
        self.meta = meta or {}
        inf = preset.inference
        self.chunk_seconds = float(inf.get("chunk_seconds", 8.0))
        self.overlap_seconds = float(inf.get("overlap_seconds", 1.0))
        self.phase = str(inf.get("phase", "pghi+gl"))
        self.iterations = int(inf.get("iterations", 8))

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None) -> PerformRenderer:
        """Rebuild the model from an inference checkpoint (default: the shipped ``default`` model)."""
        p = Path(path) if path else shipped_checkpoint()
        tensors, meta = load_checkpoint(p, kind="perform")
        cfg = meta["config"]
        try:
            preset = Preset.from_dict(cfg["preset"], str(p))
            model = PerformModel(PerformModelConfig.from_dict(cfg["model"]), preset.audio)
            model.load_state_dict(tensors)
        except (KeyError, ValueError, RuntimeError) as e:
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

    @torch.inference_mode()
    def predict(self, frames: np.ndarray, chunk_frames: int | None = None, overlap_frames: int | None = None) -> torch.Tensor:
        """(T, channels) encoding -> (T, D) raw model output, chunked with cross-faded overlaps.

        ``chunk_frames=0`` runs the whole sequence in one pass (the seam-free reference).
        """
        fr = self.preset.audio.frame_rate
        w = int(round(self.chunk_seconds * fr)) if chunk_frames is None else chunk_frames
        o = int(round(self.overlap_seconds * fr)) if overlap_frames is None else overlap_frames
        x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        t = x.shape[0]
        if w <= 0 or t <= w:
            return self.model(x[None])[0]
        o = min(max(o, 1), w // 2)
        step = w - o
        starts = list(range(0, max(t - o, 1), step))
        if starts[-1] + w < t:
            starts.append(t - w)
        batch = torch.zeros(len(starts), w, x.shape[1])
        for i, s in enumerate(starts):
            seg = x[s:s + w]
            batch[i, : seg.shape[0]] = seg
        y = self.model(batch)  # (n, w, D)
        weights = torch.ones(len(starts), w)
        for i in range(1, len(starts)):
            k = starts[i - 1] + w - starts[i]  # frames shared by chunks i-1 and i
            m = k // 4  # margin: chunk edges (conv padding, recurrent warm-up) get no weight at all
            ramp = torch.linspace(0, 1, k - 2 * m + 2)[1:-1]
            weights[i, :m] = 0
            weights[i, m:k - m] = ramp
            weights[i - 1, w - k:w - k + m] = 1
            weights[i - 1, w - k + m:w - m] = 1 - ramp
            weights[i - 1, w - m:] = 0
        out = torch.zeros(t, y.shape[-1])
        norm = torch.zeros(t, 1)
        for i, s in enumerate(starts):
            n = min(w, t - s)
            out[s:s + n] += y[i, :n] * weights[i, :n, None]
            norm[s:s + n] += weights[i, :n, None]
        return out / norm.clamp_min(1e-8)

    @torch.inference_mode()
    def synthesize(self, out: torch.Tensor, phase: str | None = None, iterations: int | None = None) -> np.ndarray:
        """(T, D) raw output -> (T * hop,) float32 audio."""
        from pianoforge import phase as ph

        method = phase or self.phase
        n_iter = self.iterations if iterations is None else iterations
        if method == "direct" or self.model.carries_phase:
            if not self.model.carries_phase:
                raise ValueError(f"phase 'direct' needs a complex or time model; this one predicts {self.model.cfg.output}")
            return self.model.to_audio(out[None])[0].numpy().astype(np.float32)
        if method not in PHASES:
            raise ValueError(f"unknown phase method {method!r} (one of {', '.join(PHASES)})")
        mag = inverse_log_magnitude(self.model.to_logmag(out[None])[0], self.preset.audio.log_eps).T  # (bins, T)
        return ph.reconstruct(mag.contiguous(), self.preset.audio, method, n_iter).numpy().astype(np.float32)

    def render_score(self, score: Score, phase: str | None = None, iterations: int | None = None) -> RenderResult:
        t0 = time.perf_counter()
        frames = self.encode(score)
        out = self.predict(frames)
        audio = self.synthesize(out, phase, iterations)
        wall = time.perf_counter() - t0
        with torch.inference_mode():
            logmag = self.model.to_logmag(out[None])[0].numpy()
        return RenderResult(audio, self.sample_rate, len(audio) / self.sample_rate, wall, logmag)

    def render_midi(self, midi_path: str | Path | Score | PrettyMIDI, wav_path: str | Path | None = None, *,
                    sample_rate: int | None = None, phase: str | None = None,
                    iterations: int | None = None) -> RenderResult:
        """Render a MIDI file (or a ``pretty_midi.PrettyMIDI``, or a :class:`Score`); write ``wav_path``
        (atomically, peak-safe) when given."""
        t0 = time.perf_counter()
        score = load_score(midi_path)
        res = self.render_score(score, phase, iterations)
        if sample_rate and sample_rate != res.sample_rate:
            res.audio = resample(res.audio, res.sample_rate, sample_rate)
            res.sample_rate = sample_rate
        res.wall_s = time.perf_counter() - t0
        if wav_path is not None:
            save_audio(wav_path, res.audio, res.sample_rate)
        return res


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
