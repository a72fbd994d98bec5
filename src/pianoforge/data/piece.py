"""Process one piece in a worker: score -> (render or load audio) -> features -> atomic piece folder.

Returns the piece's metadata dict, or a one-line error string (the piece is then skipped).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pianoforge.audio.io import audio_info, load_audio
from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import log_magnitude_np
from pianoforge.config import Preset
from pianoforge.data.sources import PieceSpec
from pianoforge.errors import PianoforgeError
from pianoforge.fsutil import atomic_output
from pianoforge.midi.encoding import encode, frames_for
from pianoforge.midi.score import load_score


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
    a = preset.audio
    try:
        score = load_score(spec.midi)
        if spec.audio is not None:
            native_sr, dur = audio_info(spec.audio)
            if native_sr < a.sample_rate:
                raise PianoforgeError(spec.audio, f"sample rate {native_sr} Hz is below the preset's {a.sample_rate} Hz")
            lag = dur - score.end_time
            tol = preset.data.align_tolerance
            if lag < -tol or lag > tol + preset.render.release_seconds + 3.0:
                raise PianoforgeError(spec.audio, f"audio lasts {dur:.2f} s but the MIDI ends at {score.end_time:.2f} s "
                                                  f"(misaligned beyond {tol:.1f} s)")
            audio = load_audio(spec.audio, a.sample_rate)
            n = len(audio) // a.hop_length
            audio = audio[: n * a.hop_length]
        else:
            n = frames_for(score.end_time + preset.render.release_seconds, a.frame_rate)
            audio = render_score(score, a.sample_rate, preset.render, n * a.hop_length)
        seconds = n / a.frame_rate
        if seconds < preset.data.min_seconds:
            raise PianoforgeError(spec.midi, f"only {seconds:.2f} s long (minimum {preset.data.min_seconds} s)")
        if not np.any(np.abs(audio) > 1e-5):
            raise PianoforgeError(spec.audio or spec.midi, "audio is silent")
        score_frames = encode(score, preset.score, a.frame_rate, n)
        spec_frames = log_magnitude_np(audio, a)
        meta = {"piece_id": spec.piece_id, "n_frames": int(n), "seconds": round(seconds, 4),
                "n_notes": len(score.notes), "dropped_out_of_range": score.dropped_out_of_range,
                "peak": round(float(np.max(np.abs(audio))), 5), "fingerprint": fingerprint,
                "midi_sha1": file_digest(spec.midi), "midi": str(spec.midi),
                "audio": str(spec.audio) if spec.audio else None, "audio_id": audio_identity(spec.audio),
                "provenance": spec.provenance}
        _write_piece(pieces_dir, spec.piece_id, {
            "score": score_frames.astype(np.float16), "spec": spec_frames.astype(np.float16),
            "audio": audio.astype(np.float16)}, meta)
        return meta
    except PianoforgeError as e:
        return str(e)
    except Exception as e:  # a worker must report, not crash the whole build
        return f"{spec.midi}: unexpected {type(e).__name__}: {' '.join(str(e).split())[:200]}"


def _write_piece(pieces_dir: Path, piece_id: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    with atomic_output(pieces_dir / piece_id, folder=True) as tmp:
        for k, v in arrays.items():
            np.save(tmp / f"{k}.npy", v, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
