"""Process one piece in a worker: score -> (render, or load a recording and check it against its MIDI:
rate, length, silence, onset alignment) -> band limit and level -> features -> atomic piece folder.

Returns the piece's metadata dict, or a one-line error string (the piece is then skipped).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pianoforge.audio.io import audio_info, band_limit, load_audio
from pianoforge.audio.loudness import normalize_loudness
from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import log_magnitude_np
from pianoforge.config import Preset
from pianoforge.data.align import MIN_ONSETS, align, distinct_onsets, shift_audio
from pianoforge.data.sources import PieceSpec
from pianoforge.errors import PianoforgeError
from pianoforge.fsutil import atomic_output
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import Score, load_score


def file_digest(path: Path) -> str:
    """SHA-1 of a file's bytes (a MIDI source's identity)."""
    h = hashlib.sha1()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def audio_identity(path: Path | None) -> str | None:
    """Size and modification time of a recorded audio file (hashing every MAESTRO WAV would be slow)."""
    if path is None or not path.exists():
        return None
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def process_piece(spec: PieceSpec, preset_dict: dict[str, Any], pieces_dir: Path, fingerprint: str) -> dict[str, Any] | str:
    preset = Preset.from_dict(preset_dict)
    a, d = preset.audio, preset.data
    try:
        score = load_score(spec.midi, d.tracks, d.programs)
        extra: dict[str, Any] = {}
        if spec.audio is not None:
            audio, extra = recorded_audio(spec, score, preset)
            n = len(audio) // a.hop_length
            audio = audio[: n * a.hop_length]
        else:
            n = frames_for(score.end_time + preset.render.release_seconds, a.frame_rate)
            audio = render_score(score, a.sample_rate, preset.render, n * a.hop_length)
            extra["native_sr"] = a.sample_rate
            audio, extra = _levels(audio, preset, extra)
        seconds = n / a.frame_rate
        if seconds < d.min_seconds:
            raise PianoforgeError(spec.midi, f"only {seconds:.2f} s long (minimum {d.min_seconds} s)")
        if not np.any(np.abs(audio) > 1e-5):
            raise PianoforgeError(spec.audio or spec.midi, "audio is silent")
        score_frames = encode(score, preset.score, a.frame_rate, n)
        spec_frames = log_magnitude_np(audio, a)
        meta = {"piece_id": spec.piece_id, "n_frames": int(n), "seconds": round(seconds, 4),
                "n_notes": len(score.notes), "dropped_out_of_range": score.dropped_out_of_range,
                "tracks_merged": score.merged_tracks, "dropped_drum_notes": score.dropped_drum_notes,
                "programs": list(score.programs),
                "peak": round(float(np.max(np.abs(audio))), 5), "fingerprint": fingerprint,
                "midi_sha1": file_digest(spec.midi), "midi": str(spec.midi),
                "audio": str(spec.audio) if spec.audio else None, "audio_id": audio_identity(spec.audio),
                **extra, "provenance": spec.provenance}
        _write_piece(pieces_dir, spec.piece_id, {
            "score": score_frames.astype(np.float16), "spec": spec_frames.astype(np.float16),
            "audio": audio.astype(np.float16)}, meta)
        return meta
    except PianoforgeError as e:
        return str(e)
    except Exception as e:  # a worker must report, not crash the whole build
        return f"{spec.midi}: unexpected {type(e).__name__}: {' '.join(str(e).split())[:200]}"


def recorded_audio(spec: PieceSpec, score: Score, preset: Preset) -> tuple[np.ndarray, dict[str, Any]]:
    """A recording checked against its MIDI and brought to the preset's rate, band and level:
    (mono float32 audio, meta: native_sr, alignment {offset, score, peak_ratio, shifted}, gain_db).
    Raises :class:`PianoforgeError` naming the audio file for every reason to skip the pair."""
    a, d = preset.audio, preset.data
    native_sr, dur = audio_info(spec.audio)
    if native_sr < a.sample_rate:
        raise PianoforgeError(spec.audio, f"sample rate {native_sr} Hz is below the preset's {a.sample_rate} Hz")
    lag = dur - score.end_time
    slack = d.align_tolerance + preset.render.release_seconds + 3.0 + (d.align_search if d.align_shift else 0.0)
    if lag < -d.align_tolerance:
        raise PianoforgeError(spec.audio, f"audio is shorter than its MIDI: it lasts {dur:.2f} s, the MIDI ends at "
                                          f"{score.end_time:.2f} s (tolerance {d.align_tolerance:.1f} s)")
    if lag > slack:
        raise PianoforgeError(spec.audio, f"audio lasts {dur:.2f} s but the MIDI ends at {score.end_time:.2f} s "
                                          f"(longer by more than {slack:.1f} s)")
    audio = load_audio(spec.audio, a.sample_rate)
    if not np.any(np.abs(audio) > 1e-5):
        raise PianoforgeError(spec.audio, "audio is silent")
    arr = score.to_arrays()
    al = align(arr["pitch"], arr["start"], arr["velocity"], audio, a.sample_rate, d.align_search)
    info: dict[str, Any] = al.to_dict()
    onsets = distinct_onsets(arr["start"])
    if onsets < MIN_ONSETS:  # too few notes to tell this recording from another: recorded, not judged
        info.update({"checked": False, "why": f"{onsets} distinct onsets (< {MIN_ONSETS})", "shifted": False})
        return _levels(audio, preset, {"native_sr": native_sr, "alignment": info})
    info["checked"] = True
    if al.score < d.align_min_score or al.peak_ratio < d.align_min_peak_ratio:
        raise PianoforgeError(spec.audio, f"audio does not match its MIDI (onset correlation {al.score:.2f}, "
                                          f"peak ratio {al.peak_ratio:.2f}; need {d.align_min_score:g} and "
                                          f"{d.align_min_peak_ratio:g}; best offset {al.offset:+.3f} s)")
    shifted = abs(al.offset) > d.onset_tolerance
    if shifted and not d.align_shift:
        raise PianoforgeError(spec.audio, f"audio is {abs(al.offset):.3f} s {'late' if al.offset > 0 else 'early'} "
                                          f"against its MIDI (onset correlation {al.score:.2f}; tolerance "
                                          f"{d.onset_tolerance:g} s; data.align_shift=true shifts it)")
    if shifted:
        audio = shift_audio(audio, al.offset, a.sample_rate)
        if len(audio) < int(score.end_time * a.sample_rate):
            audio = np.pad(audio, (0, int(score.end_time * a.sample_rate) - len(audio)))
    info["shifted"] = bool(shifted)
    return _levels(audio, preset, {"native_sr": native_sr, "alignment": info})


def _levels(audio: np.ndarray, preset: Preset, extra: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The store's common band limit (``data.lowpass_hz``) and per-piece loudness (``data.loudness_db``)."""
    d, sr = preset.data, preset.audio.sample_rate
    if d.lowpass_hz is not None:
        audio = band_limit(audio, sr, d.lowpass_hz)
    if d.loudness_db is not None:
        audio, gain = normalize_loudness(audio, sr, d.loudness_db)
        extra["gain_db"] = round(gain, 2)
    return audio, extra


def _write_piece(pieces_dir: Path, piece_id: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    with atomic_output(pieces_dir / piece_id, folder=True) as tmp:
        for k, v in arrays.items():
            np.save(tmp / f"{k}.npy", v, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
