"""Load, resample and save audio. Arrays are mono float32 in [-1, 1], shape (samples,).

Writes are atomic (:func:`pianoforge.fsutil.atomic_output`) and peak-safe (a signal whose
peak exceeds 1 is scaled down, never clipped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pianoforge.errors import AudioError
from pianoforge.fsutil import atomic_output, check_output, check_suffix, refuse_special

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


def band_limit(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Mono audio low-passed at ``cutoff_hz`` (whole-signal FFT, raised-cosine roll-off over the last 2 %
    below the cutoff, nothing above it), the same filter for every piece of a store whatever its source:
    stores that mix pieces resampled from 44.1/48 kHz (empty above soxr's pass band) and pieces rendered at
    the preset rate (which are not) are band-limited alike with ``data.lowpass_hz``."""
    x = np.asarray(x, dtype=np.float32)
    if cutoff_hz >= sample_rate / 2 or len(x) < 2:
        return x
    spec = np.fft.rfft(x.astype(np.float64))
    f = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    lo = 0.98 * cutoff_hz
    gain = np.clip((cutoff_hz - f) / (cutoff_hz - lo), 0.0, 1.0)
    spec *= 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def peak_safe(x: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale down (never clip) so that max |x| <= limit. NaN/inf are an error, not something to hide."""
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (limit / peak) if peak > limit else x


AUDIO_SUFFIXES = (".wav", ".flac")
"""Output formats :func:`save_audio` writes (chosen by the extension, case-insensitive)."""


def check_audio_output(path: str | Path, force: bool = False) -> Path:
    """Before any work: ``path`` is a supported audio format, its folder is writable, nothing is in the way."""
    return check_output(path, force=force, suffixes=AUDIO_SUFFIXES, what="audio")


_PCM_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def to_pcm(x: np.ndarray, subtype: str) -> np.ndarray:
    """Float samples in [-1, 1] -> what to hand libsndfile for ``subtype``: for integer PCM, the samples
    rounded to the nearest step (int16 for PCM_16, int32 left-aligned for PCM_24/PCM_32), else ``x``.

    libsndfile's own float -> PCM conversion truncates towards minus infinity (measured: -1e-7 is written
    as -1 LSB and 0.6 LSB as 0), which puts a DC offset of half a step under every file and a -42 dB
    component in the 0 Hz bin of each silent frame; rounding ourselves removes both (``sf.read`` divides
    by the same 2**(bits - 1))."""
    bits = _PCM_BITS.get(subtype.upper())
    if bits is None:
        return x
    q = np.rint(np.asarray(x, dtype=np.float64) * 2.0 ** (bits - 1))
    q = np.clip(q, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    if bits == 16:
        return q.astype(np.int16)
    return (q.astype(np.int64) << (32 - bits)).astype(np.int32)


def save_audio(path: str | Path, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono audio atomically and peak-safely. The format follows the suffix (:data:`AUDIO_SUFFIXES`)."""
    p = Path(path)
    refuse_special(p)
    check_suffix(p, AUDIO_SUFFIXES, "audio")
    suffix = p.suffix.lower()
    y = peak_safe(np.asarray(x).reshape(-1))
    with atomic_output(p, suffix=suffix) as tmp:
        try:
            sf.write(str(tmp), to_pcm(y, subtype), int(sample_rate), subtype=subtype)
        except OSError:
            raise
        except Exception as e:  # libsndfile errors (a full disk shows up as one of these)
            raise AudioError(p, f"cannot write audio ({_short(e)})") from e
    return p


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__
