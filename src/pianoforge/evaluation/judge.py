"""The judge: an independent transcriber (Spotify's basic-pitch) scored against the score with mir_eval.

A synthesizer that plays the right notes at the right times should be transcribed back into its score.
basic-pitch 0.4.0 (ICASSP 2022 model, run from the ONNX file inside its wheel on onnxruntime) was never
trained on our renders, so it is an outside opinion. Measured on this project's machines: deterministic,
about 45x real time on 2 CPU cores, and onset note-F1 of about 0.78-0.81 on FluidSynth renders of piano
music -- a transcriber is not perfect, so always report the reference render's score beside a model's.

Settings (:data:`MIN_NOTE_MS` etc.): minimum note length 58 ms instead of basic-pitch's 127.7 ms default,
which drops fast repeated notes; mir_eval note matching with a 50 ms onset tolerance, and for the
onset+offset scores an offset tolerance of max(0.2 x note length, 50 ms). Reference notes are lengthened
under the sustain pedal by default (what is heard), which matters only for the onset+offset scores.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pianoforge.config import HIGHEST_PITCH, LOWEST_PITCH
from pianoforge.errors import AudioError, PianoforgeError
from pianoforge.midi.score import Note, Score

MIN_NOTE_MS = 58.0
"""basic-pitch minimum note length in milliseconds (its default, 127.7 ms, drops fast repeated notes)."""
ONSET_THRESHOLD = 0.5
"""basic-pitch onset threshold (its default)."""
FRAME_THRESHOLD = 0.3
"""basic-pitch frame threshold (its default)."""
ONSET_TOLERANCE = 0.05
"""mir_eval onset tolerance in seconds."""
OFFSET_RATIO = 0.2
"""mir_eval offset tolerance as a fraction of the reference note's length (onset+offset scores)."""
OFFSET_MIN_TOLERANCE = 0.05
"""mir_eval minimum offset tolerance in seconds (onset+offset scores)."""
ONNX_MODEL = ("saved_models", "icassp_2022", "nmp.onnx")
"""Location of the ONNX model inside the basic_pitch package."""
AUDIO_SUFFIXES = (".wav", ".flac")
MIDI_SUFFIXES = (".mid", ".midi")
METRIC_KEYS = ("onset_precision", "onset_recall", "onset_f1", "onoff_precision", "onoff_recall", "onoff_f1",
               "n_ref", "n_est")
"""Keys of :func:`score_notes`."""


# ------------------------------------------------------------------------------------ basic-pitch model

@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence basic-pitch: its import-time root-logger warnings about the absent TensorFlow / CoreML /
    TFLite back ends (without installing a root handler, as ``logging.warning`` would), Python warnings
    (resampy's pkg_resources) and the "Predicting MIDI for ..." line it prints to stdout."""
    root = logging.getLogger()
    old_level = root.level
    guard = logging.NullHandler()
    root.addHandler(guard)  # logging.warning() calls basicConfig() only when root has no handler
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(old_level)
        root.removeHandler(guard)


def onnx_model_path() -> Path:
    """The ICASSP 2022 ONNX model shipped inside the installed basic_pitch package."""
    spec = _import_basic_pitch()
    return Path(spec.__file__).parent.joinpath(*ONNX_MODEL)


@functools.cache
def _import_basic_pitch() -> Any:
    try:
        with _quiet():
            import basic_pitch
            import basic_pitch.inference  # noqa: F401  (the heavy part: librosa, onnxruntime, resampy)
    except ImportError as e:
        raise PianoforgeError(None, f"the judge needs basic-pitch and onnxruntime ({e}); install with "
                                    "`pip install -e .[eval]` and `pip install --no-deps basic-pitch==0.4.0`") from e
    return basic_pitch


@functools.cache
def _model() -> Any:
    """basic-pitch's ``Model`` on the ONNX file (loaded once per process)."""
    bp = _import_basic_pitch()
    path = onnx_model_path()
    if not path.is_file():
        raise PianoforgeError(path, "basic-pitch's ONNX model is missing from its installed package")
    with _quiet():
        model = bp.inference.Model(path)
    if model.model_type != bp.inference.Model.MODEL_TYPES.ONNX:
        raise PianoforgeError(path, f"basic-pitch loaded a {model.model_type.name} model, expected ONNX")
    return model


def judge_settings() -> dict[str, Any]:
    """The judge's configuration, for reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        bp_version = version("basic-pitch")
    except PackageNotFoundError:
        bp_version = None
    return {"transcriber": "basic-pitch", "basic_pitch_version": bp_version, "model": "icassp_2022 nmp.onnx",
            "runtime": "onnxruntime", "minimum_note_ms": MIN_NOTE_MS, "onset_threshold": ONSET_THRESHOLD,
            "frame_threshold": FRAME_THRESHOLD, "onset_tolerance_s": ONSET_TOLERANCE,
            "offset_ratio": OFFSET_RATIO, "offset_min_tolerance_s": OFFSET_MIN_TOLERANCE,
            "reference_pedal_extension": True}


# ------------------------------------------------------------------------------------------ transcribe

def network_outputs(audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """basic-pitch's network outputs for mono audio: ``note`` (frame activation) and ``onset``, (frames, 88)
    in [0, 1], and ``contour`` (frames, 264), at basic-pitch's 22050 Hz / 256-sample frames (the audio is written
    losslessly as a float WAV, which basic-pitch resamples). Raises :class:`AudioError` for NaN/inf samples or
    a non-1-D array."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise AudioError(None, f"judge expects mono (samples,) audio, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError(None, "audio holds NaN or infinite samples")
    model = _model()
    bp = _import_basic_pitch()
    with tempfile.TemporaryDirectory(prefix="pianoforge-judge-") as tmp:
        wav = Path(tmp) / "audio.wav"
        sf.write(str(wav), x, int(sample_rate), subtype="FLOAT")
        with _quiet():
            return bp.inference.run_inference(str(wav), model)


def notes_from_outputs(outputs: dict[str, np.ndarray], *, minimum_note_ms: float = MIN_NOTE_MS,
                       onset_threshold: float = ONSET_THRESHOLD, frame_threshold: float = FRAME_THRESHOLD,
                       infer_onsets: bool = True, melodia_trick: bool = True) -> list[Note]:
    """basic-pitch's note creation on :func:`network_outputs` (its defaults: onsets also inferred from frame
    differences, and the "melodia trick" that makes a note of every frame-active region no onset claimed).
    Notes sorted by (start, pitch) as :func:`transcribe` returns them."""
    from basic_pitch import note_creation
    from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP

    min_len = int(np.round(minimum_note_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))  # as basic-pitch's predict
    with _quiet():
        _, events = note_creation.model_output_to_notes(outputs, onset_thresh=onset_threshold,
                                                        frame_thresh=frame_threshold, infer_onsets=infer_onsets,
                                                        min_note_len=min_len, melodia_trick=melodia_trick)
    notes = [Note(int(p), float(s), float(e), int(min(max(round(127 * float(a)), 1), 127)))
             for s, e, p, a, _ in events if LOWEST_PITCH <= int(p) <= HIGHEST_PITCH and e > s]
    return sorted(notes, key=lambda n: (n.start, n.pitch, n.end))


def transcribe(audio: np.ndarray, sample_rate: int, *, minimum_note_ms: float = MIN_NOTE_MS,
               onset_threshold: float = ONSET_THRESHOLD, frame_threshold: float = FRAME_THRESHOLD) -> list[Note]:
    """Transcribe mono audio with basic-pitch (:func:`network_outputs`, then :func:`notes_from_outputs` with
    basic-pitch's own defaults, as its ``predict`` does).

    audio: (samples,) float at ``sample_rate`` Hz, any level. Returns notes sorted by (start, pitch): times in
    seconds from the first sample, MIDI pitches 21..108, velocity = round(127 x basic-pitch amplitude) in
    1..127. Empty audio gives no notes. Raises :class:`AudioError` for NaN/inf samples or a non-1-D array.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1 and x.size == 0:
        return []
    return notes_from_outputs(network_outputs(x, sample_rate), minimum_note_ms=minimum_note_ms,
                              onset_threshold=onset_threshold, frame_threshold=frame_threshold)


# ----------------------------------------------------------------------------------------------- score

def _note_arrays(notes: Sequence[Note]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) onset/offset seconds and (n,) pitches in Hz, as mir_eval wants them."""
    import mir_eval

    iv = np.array([[n.start, n.end] for n in notes], dtype=np.float64).reshape(-1, 2)
    hz = mir_eval.util.midi_to_hz(np.array([n.pitch for n in notes], dtype=np.float64))
    return iv, hz


def score_notes(ref: Score | Sequence[Note], est_notes: Sequence[Note], *, pedal_extend: bool = True,
                onset_tolerance: float = ONSET_TOLERANCE, offset_ratio: float = OFFSET_RATIO,
                offset_min_tolerance: float = OFFSET_MIN_TOLERANCE) -> dict[str, float]:
    """Note-level precision / recall / F1 of ``est_notes`` against a reference score (mir_eval).

    ``onset_*``: a note matches when its pitch is within 50 cents and its onset within ``onset_tolerance``
    seconds (offsets ignored); ``onoff_*`` additionally needs the offset within max(``offset_ratio`` x
    reference length, ``offset_min_tolerance``). With ``pedal_extend`` a :class:`Score`'s notes are first
    lengthened under its sustain pedal. Returns the keys of :data:`METRIC_KEYS` (``n_ref``/``n_est`` are
    note counts); an empty reference or estimate scores 0 everywhere.
    """
    import mir_eval

    if isinstance(ref, Score):
        ref_notes: Sequence[Note] = (ref.with_pedal_extension() if pedal_extend else ref).notes
    else:
        ref_notes = ref
    out: dict[str, float] = {k: 0.0 for k in METRIC_KEYS}
    out["n_ref"], out["n_est"] = len(ref_notes), len(est_notes)
    if not ref_notes or not est_notes:
        return out
    ri, rp = _note_arrays(ref_notes)
    ei, ep = _note_arrays(est_notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ri, rp, ei, ep, onset_tolerance=onset_tolerance, offset_ratio=None)
        out.update(onset_precision=float(p), onset_recall=float(r), onset_f1=float(f))
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ri, rp, ei, ep, onset_tolerance=onset_tolerance, offset_ratio=offset_ratio,
            offset_min_tolerance=offset_min_tolerance)
        out.update(onoff_precision=float(p), onoff_recall=float(r), onoff_f1=float(f))
    return out


def judge_audio(audio: np.ndarray, sample_rate: int, ref_score: Score | Sequence[Note]) -> dict[str, float]:
    """Transcribe ``audio`` ((samples,) at ``sample_rate`` Hz) and score it against ``ref_score``.

    Returns :func:`score_notes`'s keys plus ``audio_s`` (seconds of audio) and ``judge_s`` (wall seconds).
    """
    t0 = time.perf_counter()
    est = transcribe(audio, sample_rate)
    out = score_notes(ref_score, est)
    out["audio_s"] = float(np.asarray(audio).reshape(-1).shape[0] / sample_rate)
    out["judge_s"] = time.perf_counter() - t0
    return out


# ----------------------------------------------------------------------------------------- folders

def mean_metrics(rows: Sequence[dict[str, Any]], keys: Sequence[str] = METRIC_KEYS) -> dict[str, float]:
    """Per-key mean over rows (macro average over pieces); keys absent from every row are left out."""
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) is not None]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def find_pairs(audio_dir: str | Path, midi_dir: str | Path) -> tuple[list[tuple[str, Path, Path]],
                                                                     list[dict[str, str]]]:
    """(stem, audio, midi) for every ``MIDI_DIR/<stem>.mid`` with an ``AUDIO_DIR/<stem>.wav`` (or .flac),
    sorted by stem, and the unmatched MIDI files as ``{"stem", "file", "reason"}``. Not recursive.

    Raises :class:`PianoforgeError` when a folder is missing.
    """
    a, m = Path(audio_dir), Path(midi_dir)
    for d, what in ((a, "audio"), (m, "MIDI")):
        if not d.is_dir():
            raise PianoforgeError(d, f"{what} folder not found")
    audio = {}
    for p in sorted(a.iterdir()):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            audio.setdefault(p.stem, p)
    pairs, unmatched = [], []
    for p in sorted(m.iterdir()):
        if p.suffix.lower() not in MIDI_SUFFIXES or not p.is_file():
            continue
        if p.stem in audio:
            pairs.append((p.stem, audio[p.stem], p))
        else:
            unmatched.append({"stem": p.stem, "file": str(p), "reason": f"no {p.stem}.wav in {a}"})
    return pairs, unmatched


def judge_folders(audio_dir: str | Path, midi_dir: str | Path, progress: bool = False) -> dict[str, Any]:
    """Judge every (audio, MIDI) pair of two folders (see :func:`find_pairs`).

    Returns ``{"pieces": [{"stem", "audio", "midi", <score_notes keys>, "audio_s", "judge_s"}],
    "skipped": [{"stem", "file", "reason"}], "mean": {<key>: mean over pieces}, "n_pieces", "settings"}``.
    Unmatched and unreadable pairs are skipped, not fatal. Raises :class:`PianoforgeError` when a folder
    is missing or no pair matches.
    """
    from tqdm import tqdm

    from pianoforge.audio.io import audio_info, load_audio
    from pianoforge.midi.score import load_score

    pairs, skipped = find_pairs(audio_dir, midi_dir)
    if not pairs:
        raise PianoforgeError(midi_dir, f"no MIDI file has a matching <stem>.wav in {audio_dir}")
    rows = []
    for stem, wav, mid in tqdm(pairs, desc="judge", unit="piece", disable=not progress):
        try:
            score = load_score(mid)
            sr, _ = audio_info(wav)
            res = judge_audio(load_audio(wav), sr, score)
        except PianoforgeError as e:
            skipped.append({"stem": stem, "file": str(mid), "reason": str(e)})
            continue
        rows.append({"stem": stem, "audio": str(wav), "midi": str(mid), **res})
    return {"pieces": rows, "skipped": skipped, "n_pieces": len(rows),
            "mean": mean_metrics(rows, (*METRIC_KEYS, "audio_s", "judge_s")), "settings": judge_settings()}
