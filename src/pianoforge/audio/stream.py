"""Audio that arrives block by block: streaming resampling and an atomic, peak-safe streaming WAV/FLAC writer.

Memory is bounded by the block size, never the piece's length. The writer keeps :func:`save_audio`'s
promises (atomic, peak-safe: a signal whose peak exceeds the limit is scaled down, never clipped) although the
peak is only known at the end: blocks go to a float32 scratch file beside the output first (4 bytes a
sample: 230 MB for an hour at 16 kHz, removed afterwards), then into the output's temporary file, scaled if
needed, then the rename. A block that fails (an exception, Ctrl-C) leaves neither file behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from pianoforge.audio.io import AUDIO_SUFFIXES, PEAK_LIMIT, to_pcm
from pianoforge.errors import AudioError
from pianoforge.fsutil import atomic_output, check_suffix, refuse_special

COPY_SAMPLES = 1 << 20
"""Samples per read when the scratch file is copied into the output (4 MB of float32)."""


def resample_blocks(blocks: Iterable[np.ndarray], sr_in: int, sr_out: int) -> Iterator[np.ndarray]:
    """Resample a stream of mono float32 blocks with soxr's streaming resampler (VHQ, as
    :func:`pianoforge.audio.io.resample`); the blocks together match the one-shot resample."""
    if sr_in == sr_out:
        yield from blocks
        return
    import soxr

    rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="VHQ")
    for b in blocks:
        y = rs.resample_chunk(np.ascontiguousarray(b, dtype=np.float32))
        if y.size:
            yield y
    y = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if y.size:
        yield y


def write_audio_stream(path: str | Path, blocks: Iterable[np.ndarray], sample_rate: int,
                       subtype: str = "PCM_16") -> tuple[int, float]:
    """Write mono float32 blocks to ``path`` atomically and peak-safely; returns (samples, peak before any
    scaling). The format follows the suffix (:data:`pianoforge.audio.io.AUDIO_SUFFIXES`)."""
    p = Path(path)
    refuse_special(p)
    check_suffix(p, AUDIO_SUFFIXES, "audio")
    with atomic_output(p, suffix=p.suffix.lower()) as tmp:
        scratch = tmp.with_name(tmp.name + ".f32")  # same temporary prefix: swept if this process dies
        try:
            n, peak = _spool(blocks, scratch)
            scale = np.float32(PEAK_LIMIT / peak) if peak > PEAK_LIMIT else None
            try:
                with sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=1, subtype=subtype) as out, \
                        open(scratch, "rb") as f:
                    for _ in range(0, n, COPY_SAMPLES):
                        x = np.fromfile(f, dtype=np.float32, count=COPY_SAMPLES)
                        out.write(to_pcm(x * scale if scale is not None else x, subtype))
            except OSError:
                raise
            except Exception as e:  # libsndfile errors (a full disk shows up as one of these)
                raise AudioError(p, f"cannot write audio ({' '.join(str(e).split())[:200]})") from e
        finally:
            scratch.unlink(missing_ok=True)
    return n, peak


def _spool(blocks: Iterable[np.ndarray], scratch: Path) -> tuple[int, float]:
    """Blocks -> raw float32 file; (samples, peak). NaN/inf are an error, as in ``peak_safe``."""
    n, peak = 0, 0.0
    with open(scratch, "wb") as f:
        for b in blocks:
            x = np.ascontiguousarray(b, dtype=np.float32).reshape(-1)
            if not x.size:
                continue
            if not np.all(np.isfinite(x)):
                raise ValueError("audio holds NaN or infinite samples")
            peak = max(peak, float(np.max(np.abs(x))))
            x.tofile(f)
            n += x.size
    return n, peak
