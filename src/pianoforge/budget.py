"""Before a render starts: how long the audio will be, how much memory and disk it needs, and whether that fits.

The whole-piece renderers hold every frame of a piece at once, so memory grows with the duration, not with
the number of notes: a MIDI file with two notes five hours apart needs tens of GB. :func:`check_render`
states the duration and refuses (one line, naming the file) what would not fit, unless the user insists
(``--allow-long``). The estimates are deliberately pessimistic per-second figures of the current code paths,
measured on the shipped checkpoints (tests/test_hardening_io.py); a streaming renderer will change
:func:`perform_bytes` and nothing else. Lowest layer: imports only :mod:`pianoforge.errors` and :mod:`pianoforge.fsutil`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from pianoforge.errors import PianoforgeError
from pianoforge.fsutil import free_bytes

MEMORY_ENV = "PIANOFORGE_MEMORY_LIMIT"
"""Bytes (suffix K, M, G allowed) a render may use; default: the memory the system says is available."""
BYTES_PER_BIN_FRAME = 96
"""Perform render peak, per STFT bin and frame: encoding, model activations of all chunks in one batch, the
complex spectrogram and Griffin-Lim copies (measured 55-85 on `default` and `lan2018`; rounded up)."""
BYTES_PER_SAMPLE = 16
"""Per output sample: the float32 waveform, the resampled and peak-safe copies (measured about 12)."""
REFERENCE_BYTES_PER_SAMPLE = 24
"""FluidSynth reference: stereo float32 read back, its mono mix, resampled and padded copies."""
FIXED_BYTES = 64 << 20
"""Headroom for the model, the score and the interpreter's own growth."""
FIGURE_BYTES = 2 << 20
"""A PNG figure on disk, at most (a Figure 4 is about 0.3 MB)."""
USABLE_FRACTION = 0.8
"""Share of the available memory a render may plan to use."""


@dataclass(frozen=True)
class RenderPlan:
    seconds: float  # duration of the audio the render will produce
    memory_bytes: int  # estimated peak memory of the render
    disk_bytes: int  # bytes the outputs will take

    def describe(self) -> str:
        return f"{format_duration(self.seconds)} of audio, about {format_bytes(self.memory_bytes)} of memory"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d} ({seconds:.0f} s)" if s >= 3600 else f"{s // 60}:{s % 60:02d} min"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


STREAM_BYTES = 384 << 20
"""Working set of the streaming perform renderer (network windows, phase blocks, buffers, the model) at any
length: bench/scale.py measured 0.48-0.52 GB peak RSS for the whole process, interpreter and torch included."""
KEEP_SECONDS = 600.0
"""Renders up to this long also keep their audio and log-magnitude arrays (``inference.KEEP_SECONDS``)."""
KEPT_BYTES_PER_BIN_FRAME = 8
"""Per STFT bin and frame when the arrays are kept: the float32 log-magnitude blocks, then joined."""


def perform_bytes(seconds: float, frame_rate: float, n_bins: int, sample_rate: int) -> int:
    """Peak memory of a streaming neural render of ``seconds``: a fixed working set, plus the arrays kept for
    pieces up to :data:`KEEP_SECONDS`. (``BYTES_PER_BIN_FRAME`` is what the whole-piece path needed.)"""
    if seconds > KEEP_SECONDS:
        return FIXED_BYTES + STREAM_BYTES
    frames = math.ceil(seconds * frame_rate)
    return (FIXED_BYTES + STREAM_BYTES + frames * n_bins * KEPT_BYTES_PER_BIN_FRAME
            + math.ceil(seconds * sample_rate) * BYTES_PER_SAMPLE)


def reference_bytes(seconds: float, sample_rate: int) -> int:
    """Peak memory of a FluidSynth reference render of ``seconds`` at ``sample_rate``."""
    return FIXED_BYTES + math.ceil(seconds * max(sample_rate, 8000)) * REFERENCE_BYTES_PER_SAMPLE


def audio_file_bytes(seconds: float, sample_rate: int) -> int:
    """A 16-bit mono WAV (FLAC is smaller) of ``seconds``."""
    return 44 + 2 * math.ceil(seconds * sample_rate)


def perform_plan(seconds: float, frame_rate: float, n_bins: int, model_rate: int, out_rate: int,
                 figure: bool = False) -> RenderPlan:
    """A neural render of ``seconds`` (frames / frame_rate), saved at ``out_rate``; ``figure``: plus Figure 4,
    which renders the FluidSynth reference of the whole piece too."""
    mem = perform_bytes(seconds, frame_rate, n_bins, max(model_rate, out_rate))
    if figure:
        mem += reference_bytes(seconds, model_rate) - FIXED_BYTES
    return RenderPlan(seconds, mem, audio_file_bytes(seconds, out_rate) + (FIGURE_BYTES if figure else 0))


def reference_plan(seconds: float, sample_rate: int) -> RenderPlan:
    """A FluidSynth reference render of ``seconds`` at ``sample_rate``."""
    return RenderPlan(seconds, reference_bytes(seconds, sample_rate), audio_file_bytes(seconds, sample_rate))


def _parse_bytes(text: str) -> int:
    t = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise PianoforgeError(None, f"${MEMORY_ENV}={text!r} is not a size (e.g. 4G, 512M)") from None


def available_memory() -> int | None:
    """Bytes a render may use: $PIANOFORGE_MEMORY_LIMIT, else MemAvailable (capped by a cgroup limit)."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        return _parse_bytes(env)
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        cg = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if cg.isdigit() and avail is not None:
            avail = min(avail, int(cg))
    except OSError:
        pass
    return None if avail is None else int(avail * USABLE_FRACTION)


def check_render(source: str | Path, plan: RenderPlan, out_folder: str | Path | None = None,
                 allow_long: bool = False) -> None:
    """Refuse a render that would not fit in memory (unless ``allow_long``) or whose outputs would not fit on
    the disk holding ``out_folder``. PianoforgeError naming ``source`` (memory) or the folder (disk)."""
    limit = available_memory()
    if not allow_long and limit is not None and plan.memory_bytes > limit:
        raise PianoforgeError(source, f"the render would be {format_duration(plan.seconds)} long and need about "
                                      f"{format_bytes(plan.memory_bytes)} of memory; {format_bytes(limit)} is "
                                      f"available (is a note or event hours late? use --allow-long to try anyway)")
    if out_folder is not None:
        check_disk(out_folder, plan.disk_bytes)


def check_disk(folder: str | Path, need: int) -> None:
    """PianoforgeError naming ``folder`` when its filesystem has fewer than ``need`` bytes free."""
    free = free_bytes(folder)
    if need > free:
        raise PianoforgeError(folder, f"not enough free disk space for the output: it needs about "
                                      f"{format_bytes(need)}, {format_bytes(free)} is free")
