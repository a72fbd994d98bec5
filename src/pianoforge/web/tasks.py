"""The page's work, run as jobs (:mod:`pianoforge.web.jobs`) with progress: a perform render beside the
FluidSynth reference with Figure 4, the judge of both, and GAN clips or a latent interpolation.

Loudness: the two players of a render hold the same RMS level (:data:`TARGET_RMS_DB`, then one common gain
if either would clip), so an A/B compares timbre, not level. The reference is rendered by FluidSynth at the
model's own sample rate (the band the model was trained to imitate) and both are resampled to the chosen
output rate together; the WAVs offered for download are the ones the players play.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pianoforge.audio.io import PEAK_LIMIT, load_audio, resample, save_audio
from pianoforge.budget import check_render, perform_plan
from pianoforge.errors import PianoforgeError
from pianoforge.midi.score import Score

if TYPE_CHECKING:
    from pianoforge.improvise import GanGenerator
    from pianoforge.inference import PerformRenderer
    from pianoforge.web.jobs import Job

TARGET_RMS_DB = -20.0
"""Both players are set to this RMS level (dBFS) before a common peak limit."""
MAX_CLIPS = 16
"""Most clips (or interpolation steps) one improvise job makes."""
FIGURE_LOCK = threading.Lock()
"""matplotlib's pyplot keeps global state: one figure at a time, whatever the number of workers."""


class ModelCache:
    """Loaded renderers and generators by checkpoint file, reloaded when the file changes (a run's
    ``best.safetensors`` is replaced while training goes on). Shared by every job: inference is read-only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], tuple[tuple[int, int], Any]] = {}

    def _get(self, kind: str, path: Path) -> Any:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._models.get((kind, str(path)))
            if hit and hit[0] == stamp:
                return hit[1]
            if kind == "perform":
                from pianoforge.inference import PerformRenderer

                model = PerformRenderer.from_checkpoint(path)
            else:
                from pianoforge.improvise import GanGenerator

                model = GanGenerator.from_checkpoint(path)
            self._models[(kind, str(path))] = (stamp, model)
            return model

    def renderer(self, path: Path) -> PerformRenderer:
        return self._get("perform", path)

    def generator(self, path: Path) -> GanGenerator:
        return self._get("gan", path)


# ---------------------------------------------------------------------------------------------- perform

@dataclass(frozen=True)
class PerformRequest:
    score: Score
    name: str  # the upload's display name
    checkpoint: Path
    checkpoint_label: str
    phase: str | None
    sample_rate: int | None


def check_perform(renderer: PerformRenderer, req: PerformRequest, max_seconds: float, folder: Path) -> float:
    """Refuse before queueing: a phase this model cannot use, a score over the duration limit, one that
    would not fit in memory or whose files would not fit in ``folder``. Returns its duration in seconds."""
    from pianoforge.inference import PHASES
    from pianoforge.web.uploads import check_duration

    if req.phase is not None and req.phase not in PHASES:
        raise ValueError(f"unknown phase method {req.phase!r} (one of {', '.join(PHASES)})")
    if req.phase == "direct" and not renderer.model.carries_phase:
        raise ValueError(f"phase 'direct' needs a complex or time model; this one predicts "
                         f"{renderer.model.cfg.output}")
    if req.phase not in (None, "direct") and renderer.model.carries_phase:
        raise ValueError(f"phase {req.phase!r} does not apply: this model writes its own waveform (phase direct)")
    au = renderer.preset.audio
    seconds = renderer.n_frames(req.score) / au.frame_rate
    check_duration(req.score, seconds, max_seconds, req.name)
    plan = perform_plan(seconds, au.frame_rate, au.n_bins, au.sample_rate, req.sample_rate or au.sample_rate,
                        figure=True)
    check_render(req.name, plan, folder, allow_long=False)
    return seconds


def match_loudness(a: np.ndarray, b: np.ndarray, target_db: float = TARGET_RMS_DB) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``a`` and ``b`` to the same RMS (``target_db`` dBFS), then both by one gain so neither clips."""
    target = 10.0 ** (target_db / 20.0)

    def level(x: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
        return (x * (target / rms)).astype(np.float32) if rms > 1e-9 else x.astype(np.float32)

    a, b = level(a), level(b)
    peak = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    if peak > PEAK_LIMIT:
        a, b = a * (PEAK_LIMIT / peak), b * (PEAK_LIMIT / peak)
    return a, b


def perform(job: Job, cache: ModelCache, req: PerformRequest) -> None:
    """Neural render + FluidSynth reference (same length, same loudness) + Figure 4 into the job's folder."""
    from pianoforge.audio.render import render_score
    from pianoforge.inference import figure4

    job.data["score"] = req.score
    job.progress("loading the model", 0.02)
    r = cache.renderer(req.checkpoint)
    job.progress(f"neural render ({req.phase or r.phase})", 0.05)
    t0 = time.perf_counter()
    res = r.render_score(req.score, req.phase)  # at the model's rate, with the predicted log-magnitude
    rate = req.sample_rate or res.sample_rate
    neural = resample(res.audio, res.sample_rate, rate) if rate != res.sample_rate else res.audio
    wall = time.perf_counter() - t0
    job.progress("FluidSynth reference", 0.6)
    ref_model_rate = render_score(req.score, res.sample_rate, r.preset.render, len(res.audio))
    ref = resample(ref_model_rate, res.sample_rate, rate) if rate != res.sample_rate else ref_model_rate
    n = min(len(neural), len(ref))
    neural, ref = match_loudness(neural[:n], ref[:n])
    job.progress("writing the WAVs", 0.7)
    stem = Path(req.name).stem or "score"
    urls = {"neural": job.add_file(f"{stem}.neural.wav", save_audio(job.folder / "neural.wav", neural, rate)),
            "reference": job.add_file(f"{stem}.reference.wav", save_audio(job.folder / "reference.wav", ref, rate))}
    job.progress("Figure 4 (piano roll and spectrograms)", 0.75)
    with FIGURE_LOCK:
        fig = figure4(job.folder / "figure4.png", r, req.score, res.logmag, ref_model_rate)
    urls["figure4"] = job.add_file(f"{stem}.figure4.png", fig)
    job.data.update(rate=rate)
    job.result = {"name": req.name, "checkpoint": req.checkpoint_label, "phase": req.phase or r.phase,
                  "iterations": r.iterations, "sample_rate": rate, "model_sample_rate": res.sample_rate,
                  "seconds": round(n / rate, 3), "render_s": round(wall, 3),
                  "realtime_factor": round(n / rate / max(wall, 1e-9), 2), "notes": len(req.score.notes),
                  "files": urls}


def judge(job: Job, source: Job) -> None:
    """Onset note-F1 (and onset+offset F1) of both renders of ``source`` against its score."""
    from pianoforge.evaluation.judge import judge_audio

    if source.state != "done" or "score" not in source.data:
        raise PianoforgeError(None, "that render is not finished (or has expired); render again")
    out: dict[str, Any] = {}
    for i, which in enumerate(("neural", "reference")):
        job.progress(f"transcribing the {which} render (basic-pitch)", 0.1 + 0.45 * i)
        audio = load_audio(source.folder / f"{which}.wav")
        m = judge_audio(audio, source.data["rate"], source.data["score"])
        out[which] = {k: round(float(m[k]), 4) for k in ("onset_f1", "onset_precision", "onset_recall", "onoff_f1")}
    out["ratio"] = round(out["neural"]["onset_f1"] / max(out["reference"]["onset_f1"], 1e-9), 3)
    job.result = out


# -------------------------------------------------------------------------------------------- improvise

@dataclass(frozen=True)
class ImproviseRequest:
    checkpoint: Path
    checkpoint_label: str
    n: int
    seed: int
    interpolate: bool = False
    seed_b: int = 1


def improvise(job: Job, cache: ModelCache, req: ImproviseRequest) -> None:
    """``n`` clips from seeds ``seed..seed+n-1`` (clip k is ``generate(1, seed + k)``, as the CLI's), or an
    ``n``-step latent interpolation from ``seed`` to ``seed_b`` plus the whole sequence as one WAV."""
    from pianoforge.improvise import spectrogram_png

    job.progress("loading the generator", 0.02)
    g = cache.generator(req.checkpoint)
    t0 = time.perf_counter()
    z = g.interpolation_latents(req.seed, req.seed_b, req.n) if req.interpolate else None
    clips, audio = [], []
    for k in range(req.n):
        job.progress(f"clip {k + 1} of {req.n}", 0.05 + 0.9 * k / req.n)
        if z is not None:
            c, label = g.render(z[k:k + 1], [req.seed]), f"step {k + 1}/{req.n} ({req.seed} -> {req.seed_b})"
        else:
            c, label = g.generate_clips(1, req.seed + k), f"seed {req.seed + k}"
        name = f"interp-{req.seed}-{req.seed_b}-{k:03d}" if z is not None else f"clip-seed{req.seed + k}"
        wav = job.add_file(f"{name}.wav", save_audio(job.folder / f"clip{k}.wav", c.audio[0], c.sample_rate))
        with FIGURE_LOCK:
            png = job.add_file(f"{name}.png", spectrogram_png(job.folder / f"clip{k}.png", c.logmag[0],
                                                              g.audio_config, label))
        clips.append({"label": label, "audio": wav, "spectrogram": png})
        audio.append(c.audio[0])
    job.result = {"checkpoint": req.checkpoint_label, "sample_rate": g.sample_rate, "seconds": round(g.seconds, 3),
                  "wall_s": round(time.perf_counter() - t0, 3), "clips": clips}
    if z is not None:
        whole = save_audio(job.folder / "sequence.wav", np.concatenate(audio), g.sample_rate)
        job.result["sequence"] = job.add_file(f"interp-{req.seed}-{req.seed_b}.wav", whole)
