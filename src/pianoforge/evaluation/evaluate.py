"""Evaluate a perform checkpoint on a split of a dataset store: render, measure, judge, report.

For every piece of the split the score is re-read from the piece's MIDI file (``meta["midi"]``), rendered
with the checkpoint (:class:`pianoforge.inference.PerformRenderer`), and compared with the piece's stored
reference audio and log-magnitude. Five systems are measured per piece:

======================  ===================================================================================
system                  audio
======================  ===================================================================================
``model``               the checkpoint's render (its phase method, or ``phase``/``iterations`` if given)
``reference``           the stored reference audio (a FluidSynth render, or the recording for MAESTRO):
                        its judge score is the ceiling the transcriber allows on this material
``model-true-phase``    the model's predicted magnitude with the reference audio's STFT phase, through
                        :func:`pianoforge.audio.spectral.istft` (frames x hop samples): the magnitude error
                        alone (:func:`true_phase_audio`)
``oracle-phase``        the reference magnitude |STFT| through the model's phase reconstruction: the phase
                        error alone
``oracle-zero-phase``   the reference magnitude through zero phase
======================  ===================================================================================

``oracle-phase`` and ``model-true-phase`` decompose the model's distance into its phase part and its
magnitude part (the text of :data:`pianoforge.evaluation.report.DECOMPOSITION` is in every report).
Means are reported over the split and per subset of pieces (:func:`pianoforge.evaluation.report.subset_of`:
``music21`` works, the test-only ``chord-dynamics`` exercises, ...), each with the onset F1 ratio
model / reference.

Per system: the distances of :mod:`pianoforge.evaluation.metrics` against the reference audio, the LMS
MSE of the system's log-magnitude against the stored one (``lms_mse``; the reference and the oracles start
from the reference magnitude, so theirs is ~0) and of its re-analysed audio against the re-analysed
reference audio (``lms_mse_audio``: what phase reconstruction loses shows here), and the judge's scores
(:mod:`pianoforge.evaluation.judge`). Outputs in ``out``: ``metrics.json`` (means per system, config,
timing, subsets), ``pieces.csv`` (one row per piece x system), ``report.md`` (written by :mod:`.report`),
``figure4.png`` (first piece: piano roll, predicted and reference spectrograms), ``onset_f1.png`` and the first
piece's WAVs (model, reference, the decomposition and oracle rows).
Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pianoforge.audio.io import save_audio
from pianoforge.audio.spectral import inverse_log_magnitude, istft, log_magnitude_np, stft
from pianoforge.config import AudioConfig, InferenceConfig
from pianoforge.data.store import FeatureStore
from pianoforge.errors import PianoforgeError, StoreError
from pianoforge.evaluation import report
from pianoforge.evaluation.metrics import audio_metrics, lms_mse, lms_mse_of_audio
from pianoforge.evaluation.report import CSV_COLUMNS, JUDGE_KEYS, SPECTRAL_KEYS, SYSTEMS, subset_of
from pianoforge.fsutil import write_text_atomic
from pianoforge.inference import PerformRenderer, figure4
from pianoforge.midi.score import Score, load_score
from pianoforge.phase import PHASE_METHODS, reconstruct

log = logging.getLogger(__name__)

__all__ = ["CSV_COLUMNS", "JUDGE_KEYS", "SPECTRAL_KEYS", "SYSTEMS", "check_geometry",
           "evaluate_checkpoint", "true_phase_audio"]


def check_geometry(renderer: PerformRenderer, store: FeatureStore, checkpoint: str | Path) -> None:
    """The store must share the checkpoint's audio geometry and score encoding (else a StoreError)."""
    rp, sp = renderer.preset, store.preset
    if rp.audio != sp.audio or rp.score != sp.score:
        raise StoreError(store.root, f"was built with preset {sp.name!r}, whose audio/score geometry differs from "
                                     f"checkpoint {Path(checkpoint).name}'s; build one with "
                                     f"`pianoforge data build --preset {rp.name}`")


def true_phase_audio(logmag: np.ndarray, ref_stft: torch.Tensor, cfg: AudioConfig) -> np.ndarray:
    """A magnitude with the reference's phase: (frames, bins) natural-log magnitude ``logmag`` and the
    reference audio's complex STFT ``ref_stft`` (bins, frames') -> (n * hop,) float32 audio, n = the shorter
    frame count, by the project's own inverse STFT (so exactly n * hop samples, aligned with the reference)."""
    n = min(logmag.shape[0], ref_stft.shape[-1])
    with torch.inference_mode():
        mag = inverse_log_magnitude(torch.from_numpy(np.ascontiguousarray(logmag[:n].T, dtype=np.float32)),
                                    cfg.log_eps)
        y = istft(torch.polar(mag, ref_stft[:, :n].angle()), cfg)
    return y.numpy().astype(np.float32)


# ------------------------------------------------------------------------------------------ evaluate

@dataclass
class _Reference:
    """One piece's targets: stored audio (samples,), stored log-magnitude (frames, bins), and the
    log-magnitude re-analysed from the stored audio (frames, bins)."""

    audio: np.ndarray
    spec: np.ndarray
    audio_logmag: np.ndarray


def _system_row(pid: str, system: str, audio: np.ndarray, logmag: np.ndarray, ref: _Reference,
                store: FeatureStore, score: Score, judge: bool, synth_s: float | None,
                meta: dict[str, Any]) -> dict[str, Any]:
    """One row of pieces.csv: ``audio`` (samples,) and ``logmag`` (frames, bins) of one system against
    the piece's reference."""
    cfg = store.preset.audio
    row: dict[str, Any] = {"piece_id": pid, "system": system, "subset": subset_of(meta),
                           "seconds": len(ref.audio) / cfg.sample_rate,
                           "n_notes": meta.get("n_notes"), "synth_s": synth_s}
    row.update(audio_metrics(audio, ref.audio, cfg))
    row["lms_mse"] = lms_mse(logmag, ref.spec, store.normalizer)
    # against the re-analysed stored audio, not spec.npy: the float16 audio's quantization floor lifts
    # quiet bins, which would otherwise count as error even for the reference itself
    row["lms_mse_audio"] = lms_mse_of_audio(audio, ref.audio_logmag, store.normalizer, cfg)
    if judge:
        from pianoforge.evaluation.judge import judge_audio

        res = judge_audio(audio, cfg.sample_rate, score)
        row.update({k: res[k] for k in JUDGE_KEYS})
        row["judge_s"] = res["judge_s"]
    return row


def _decomposition_rows(pid: str, logmag: np.ndarray, ref: _Reference, store: FeatureStore, score: Score,
                        judge: bool, meta: dict[str, Any], oracle_method: str,
                        n_iter: int) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The rows that split the model's error: ``model-true-phase`` (the predicted (frames, bins) ``logmag``
    with the reference phase), ``oracle-phase`` (the true magnitude through ``oracle_method``) and
    ``oracle-zero-phase``; and their audio by system name (for the first piece's WAVs)."""
    cfg = store.preset.audio
    with torch.inference_mode():
        ref_stft = stft(torch.from_numpy(ref.audio.copy()), cfg)  # (bins, frames), the exact reference
    mag = ref_stft.abs()
    t0 = time.perf_counter()
    y = true_phase_audio(logmag, ref_stft, cfg)
    rows = [_system_row(pid, "model-true-phase", y, logmag, ref, store, score, judge, time.perf_counter() - t0, meta)]
    audios = {"model-true-phase": y}
    oracle: dict[str, dict[str, Any]] = {}
    for system, m in (("oracle-phase", oracle_method), ("oracle-zero-phase", "zero")):
        if m not in oracle:
            t0 = time.perf_counter()
            y = reconstruct(mag, cfg, m, n_iter).numpy().astype(np.float32)
            oracle[m] = _system_row(pid, system, y, ref.spec, ref, store, score, judge, time.perf_counter() - t0, meta)
            audios[system] = y
        rows.append({**oracle[m], "system": system, "shared": len(oracle) < 2 and system == "oracle-zero-phase"})
    return rows, audios


def evaluate_checkpoint(ckpt: str | Path, data: str | Path, split: str, out: str | Path, limit: int | None = None,
                        phase: str | None = None, iterations: int | None = None, judge: bool = True,
                        progress: bool = True) -> dict[str, Any]:
    """Render every piece of ``split`` of the store ``data`` with the checkpoint ``ckpt``, measure the five
    systems of the module docstring, and write ``metrics.json``, ``pieces.csv``, ``report.md`` and the
    figures into ``out`` (created if needed). ``limit``: only the first N pieces of the split. ``phase``,
    ``iterations``: override the checkpoint's phase reconstruction. ``judge=False`` skips transcription.

    Returns the ``metrics.json`` content: ``{"checkpoint", "data", "split", "n_pieces", "pieces",
    "skipped", "systems": {system: {metric: mean}}, "onset_f1_ratio", "subsets": {subset: {"pieces",
    "systems", "onset_f1_ratio"}}, "config", "timing", "files"}``. Raises
    :class:`PianoforgeError` subclasses for a missing/foreign checkpoint or store, a geometry mismatch, an
    empty split, or when no piece could be evaluated; single unreadable pieces are skipped and listed.
    """
    from tqdm import tqdm

    from pianoforge.data.piece import file_digest
    from pianoforge.evaluation.judge import judge_settings

    t_start = time.perf_counter()
    out = Path(out)
    renderer = PerformRenderer.from_checkpoint(ckpt)
    store = FeatureStore(data)
    check_geometry(renderer, store, ckpt)
    pieces = store.pieces(split)
    if not pieces:
        have = sorted({p["split"] for p in store.pieces()})
        raise StoreError(store.root, f"split {split!r} holds no pieces (splits with pieces: {', '.join(have) or 'none'})")
    if limit is not None:
        pieces = pieces[:max(int(limit), 0)]
    cfg = store.preset.audio
    method = phase or renderer.phase
    n_iter = renderer.iterations if iterations is None else int(iterations)
    if renderer.model.carries_phase:  # complex / time models bring their own phase
        method = "direct"
    elif method not in PHASE_METHODS:
        raise PianoforgeError(ckpt, f"phase {method!r} does not apply to this {renderer.model.cfg.output} model "
                                    f"(one of {', '.join(PHASE_METHODS)})")
    oracle_method = method if method in PHASE_METHODS else "pghi+gl"
    # a model with its own phase has no phase path: its oracle row is the default one (PGHI + GL x 4), the
    # floor any magnitude model of this geometry starts from
    oracle_iter = n_iter if method in PHASE_METHODS else InferenceConfig().iterations
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PianoforgeError(out, f"cannot create the report folder ({e.strerror or e})") from e
    recorded = any(p.get("audio") for p in pieces)
    labels = {"model": "model", "reference": "reference (recording)" if recorded else "reference (FluidSynth)",
              "model-true-phase": "model-true-phase",
              "oracle-phase": f"oracle-phase ({oracle_method}{f' x{oracle_iter}' if oracle_method == 'pghi+gl' else ''})",
              "oracle-zero-phase": "oracle-zero-phase"}

    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    done: list[str] = []
    files: dict[str, str] = {}
    model_s = audio_s = 0.0
    for meta in tqdm(pieces, desc="eval", unit="piece", disable=not progress):
        pid = meta["piece_id"]
        midi = Path(meta.get("midi") or "")
        try:
            score = load_score(midi, store.preset.data.tracks, store.preset.data.programs)  # as the store chose
            if meta.get("midi_sha1") and file_digest(midi) != meta["midi_sha1"]:
                raise PianoforgeError(midi, "MIDI file changed since the store was built")
            arr = store.arrays(pid)
        except PianoforgeError as e:
            skipped.append({"piece_id": pid, "reason": str(e)})
            log.warning("skipped %s", e)
            continue
        ref_audio = np.asarray(arr.audio, dtype=np.float32)
        ref_spec = np.asarray(arr.spec, dtype=np.float32)
        ref = _Reference(ref_audio, ref_spec, log_magnitude_np(ref_audio, cfg))
        res = renderer.render_score(score, phase=method, iterations=n_iter)
        if len(res.audio) != len(ref_audio):
            log.warning("%s: model render has %d samples, the stored reference %d; comparing the first %d",
                        pid, len(res.audio), len(ref_audio), min(len(res.audio), len(ref_audio)))
        model_s += res.wall_s
        audio_s += len(ref_audio) / cfg.sample_rate
        rows.append(_system_row(pid, "model", res.audio, res.logmag, ref, store, score, judge,
                                res.wall_s, meta))
        rows.append(_system_row(pid, "reference", ref_audio, ref_spec, ref, store, score, judge,
                                None, meta))
        decomposed, audios = _decomposition_rows(pid, res.logmag, ref, store, score, judge, meta, oracle_method,
                                                 oracle_iter)
        rows += decomposed
        if not done:  # the first piece: pictures and sounds
            for system, y in audios.items():
                files[f"{system}_wav"] = str(save_audio(out / f"{pid}.{system}.wav", y, cfg.sample_rate).name)
            files["figure4"] = figure4(out / "figure4.png", renderer, score, res.logmag, ref_audio).name
            files["model_wav"] = save_audio(out / f"{pid}.model.wav", res.audio, cfg.sample_rate).name
            files["reference_wav"] = save_audio(out / f"{pid}.reference.wav", ref_audio, cfg.sample_rate).name
        done.append(pid)
    if not done:
        raise PianoforgeError(store.root, f"none of the {len(pieces)} piece(s) of split {split!r} could be evaluated "
                                          f"({skipped[0]['reason'] if skipped else 'no pieces'})")

    keys = (*SPECTRAL_KEYS, *(JUDGE_KEYS if judge else ()), "synth_s", *(("judge_s",) if judge else ()))
    systems = report.means(rows, tuple(k for k in keys if k != "synth_s"))
    for s in systems:
        vals = [r["synth_s"] for r in rows if r["system"] == s and r["synth_s"] is not None]
        if vals:
            systems[s]["synth_s"] = float(np.mean(vals))
    judge_s = float(sum(r.get("judge_s") or 0.0 for r in rows if not r.get("shared")))  # oracle rows may be one
    true_phase_judge_s = float(sum(r.get("judge_s") or 0.0 for r in rows if r["system"] == "model-true-phase"))
    result: dict[str, Any] = {
        "checkpoint": str(ckpt), "data": str(data), "split": split, "n_pieces": len(done), "pieces": done,
        "skipped": skipped, "systems": systems, "onset_f1_ratio": report.f1_ratio(systems),
        "subsets": report.subsets(rows, tuple(k for k in keys if k != "synth_s")),
        "config": {"preset": renderer.preset.name, "audio": asdict(cfg), "phase": method, "iterations": n_iter,
                   "oracle_phase": oracle_method, "oracle_iterations": oracle_iter, "model": renderer.model.cfg.to_dict(), "limit": limit,
                   "reference": labels["reference"], "judge": judge_settings() if judge else None,
                   "data_fingerprint": store.manifest.get("fingerprint"), "torch_threads": torch.get_num_threads()},
        "timing": {"total_s": 0.0, "audio_s": audio_s, "model_render_s": model_s,
                   "model_realtime_factor": audio_s / max(model_s, 1e-9), "judge_s": judge_s,
                   "true_phase_judge_s": true_phase_judge_s},
        "files": files,
    }
    figures = {"Figure 4: piano roll, predicted and reference spectrograms (first piece)": files["figure4"]}
    if judge:
        files["onset_f1"] = report.bar_chart(out / "onset_f1.png", rows, labels).name
        figures["onset note-F1 per system"] = files["onset_f1"]
    files.update({"metrics": "metrics.json", "pieces": "pieces.csv", "report": "report.md"})
    result["timing"]["total_s"] = time.perf_counter() - t_start
    write_text_atomic(out / "pieces.csv", report.csv_text(rows))
    write_text_atomic(out / "report.md", report.report_md(result, labels, figures))
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    return result
