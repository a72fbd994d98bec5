"""Load, resample and save audio. Arrays are mono float32 in [-1, 1], shape (samples,).

Writes are atomic (temporary file in the same folder, then ``os.replace``) and peak-safe (a signal whose
peak exceeds 1 is scaled down, never clipped).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pianoforge.errors import AudioError
from pianoforge.fsutil import mkstemp

PEAK_LIMIT = 0.999
"""Peak level a save scales down to when the signal would clip."""


def audio_info(path: str | Path) -> tuple[int, float]:
    """(sample rate in Hz, duration in seconds) of an audio file, without decoding it."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    try:
        info = sf.info(str(p))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError subclasses
        raise AudioError(p, f"unreadable audio ({_short(e)})") from e
    return int(info.samplerate), float(info.frames) / float(info.samplerate)


def load_audio(path: str | Path, sample_rate: int | None = None, *, allow_upsample: bool = True) -> np.ndarray:
    """Read a file as mono float32 (samples,), resampled to ``sample_rate`` (soxr, high quality).

    ``allow_upsample=False`` rejects files whose native rate is below ``sample_rate`` (upsampling would
    fake bandwidth the training target does not have).
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(p, f"unreadable audio ({_short(e)})") from e
    if data.shape[0] == 0:
        raise AudioError(p, "audio file holds no samples")
    x = data.mean(axis=1).astype(np.float32)
    if sample_rate is not None and sr != sample_rate:
        if not allow_upsample and sr < sample_rate:
            raise AudioError(p, f"sample rate {sr} Hz is below the required {sample_rate} Hz")
        x = resample(x, sr, sample_rate)
    if not np.all(np.isfinite(x)):
        raise AudioError(p, "audio holds NaN or infinite samples")
    return x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample mono float32 audio with soxr (VHQ)."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    return soxr.resample(x.astype(np.float32, copy=False), sr_in, sr_out, quality="VHQ").astype(np.float32)


def peak_safe(x: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale down (never clip) so that max |x| <= limit. NaN/inf are an error, not something to hide."""
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (limit / peak) if peak > limit else x


def save_audio(path: str | Path, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono audio atomically and peak-safely. The format follows the suffix (.wav, .flac)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AudioError(p, f"output folder {parent} does not exist")
    y = peak_safe(np.asarray(x).reshape(-1))
    try:
        fd, tmp = mkstemp(prefix=f".{p.stem}.", suffix=p.suffix or ".wav", dir=parent)
    except OSError as e:
        raise AudioError(p, f"output folder is not writable ({_short(e)})") from e
    os.close(fd)
    try:
        sf.write(tmp, y, int(sample_rate), subtype=subtype)
        os.replace(tmp, p)
    except PermissionError as e:
        raise AudioError(p, "output folder is not writable") from e
    except Exception as e:
        raise AudioError(p, f"cannot write audio ({_short(e)})") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__
