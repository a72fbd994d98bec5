"""Benchmark: phase reconstruction from the TRUE magnitude of a FluidSynth piano passage (one CPU thread).

One command: ``python bench/phase.py [--seconds 30] [--repeats 3] [--preset default]``.

A deterministic ~30 s passage (scales, pedalled chords under a melody, wide arpeggios, repeated notes, a
trill, a final chord) is rendered with FluidSynth at the preset's sample rate; its magnitude
``|spectral.stft(x)|`` is handed to each method of :mod:`pianoforge.phase`. For each method: wall time
and process CPU time (medians of ``--repeats`` interleaved runs, ``torch.set_num_threads(1)``, after one
untimed warm-up run that also compiles and disk-caches the numba kernels), real-time factor (audio
seconds per wall second), spectral convergence of the re-analysed output against the true magnitude, and
the multi-resolution log-spectral distance (dB) against the reference audio, overall and per
resolution. Also times PGHI alone on the passage twice over (60 s). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

METHODS: tuple[tuple[str, str, int], ...] = (
    ("zero", "zero", 0),
    ("griffinlim 8 (random init)", "griffinlim", 8),
    ("griffinlim 16 (random init)", "griffinlim", 16),
    ("griffinlim 32 (random init)", "griffinlim", 32),
    ("griffinlim 64 (random init)", "griffinlim", 64),
    ("pghi", "pghi", 0),
    ("pghi+gl 2", "pghi+gl", 2),
    ("pghi+gl 4", "pghi+gl", 4),
    ("pghi+gl 8", "pghi+gl", 8),
    ("pghi+gl 16", "pghi+gl", 16),
)


RESOLUTIONS = (512, 1024, 2048)


def passage(seconds: float = 30.0):
    """A deterministic piano passage of about ``seconds`` (incl. a 1.5 s release tail) as a Score."""
    from pianoforge.midi.score import Note, make_score

    notes: list[Note] = []
    pedal: list[tuple[float, float]] = []
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    t = 0.0
    # A. C-major scales in 16ths, hands an octave apart, up and down, no pedal (0 - 8 s)
    step = 0.125
    for rep in range(4):
        run = [60 + s for s in scale] + [72 + s for s in scale[1:]]
        run = run + run[-2::-1]
        for i, p in enumerate(run[:16]):
            v = 60 + 6 * rep + (12 if i % 4 == 0 else 0)
            notes.append(Note(p + 12 * (rep % 2), t, t + step * 0.95, v))
            notes.append(Note(p - 12, t, t + step * 0.95, v - 10))
            t += step
    # B. pedalled block chords (half notes) under a quarter-note melody (8 - 18 s)
    chords = [(48, 55, 64), (45, 52, 60), (41, 48, 57), (43, 50, 59), (48, 55, 64)]
    melody = [76, 74, 72, 74, 76, 76, 76, 79, 77, 76, 74, 72, 71, 72, 74, 72, 76, 79, 84, 79]
    q = 0.5
    for c, chord in enumerate(chords):
        pedal.append((t + 0.03, t + 4 * q - 0.06))
        for p in chord:
            notes.append(Note(p, t, t + 2 * q, 55 + 5 * c))
            notes.append(Note(p, t + 2 * q, t + 4 * q, 50 + 5 * c))
        notes.append(Note(chord[0] - 12, t, t + 4 * q, 70))
        for j in range(4):
            m = melody[(4 * c + j) % len(melody)]
            notes.append(Note(m, t + j * q, t + (j + 1) * q * 0.98, 80 + 4 * (j % 2)))
        t += 4 * q
    # C. wide pedalled arpeggios from the bass to the top octave (18 - 24 s)
    arps = [(28, 40, 47, 52, 56, 59, 64, 68, 71, 76, 80, 83, 88, 92, 95, 100),
            (26, 38, 45, 50, 53, 57, 62, 65, 69, 74, 77, 81, 86, 89, 93, 98),
            (31, 43, 50, 55, 59, 62, 67, 71, 74, 79, 83, 86, 91, 95, 98, 103)]
    for arp in arps:
        pedal.append((t + 0.02, t + 2.0 - 0.05))
        for i, p in enumerate(arp):
            s = t + i * 0.1
            notes.append(Note(p, s, s + 0.3, 50 + (i * 37) % 50))
        t += 2.0
    # D. repeated notes, a trill, then a loud final chord held under the pedal (24 - end)
    for i in range(12):
        notes.append(Note(67, t + i * 0.09, t + i * 0.09 + 0.07, 60 + (i % 3) * 15))
    t += 12 * 0.09
    for i in range(24):
        notes.append(Note(74 + (i % 2) * 2, t + i * 0.06, t + i * 0.06 + 0.055, 70))
    t += 24 * 0.06
    end = max(t + 1.0, seconds - 1.5)
    pedal.append((t, end))
    for p in (36, 48, 55, 60, 64, 67, 72, 76, 84):
        notes.append(Note(p, t, end - 0.5, 100))
    return make_score(notes, pedal, source="bench/phase.py passage")


def timed_round_robin(fns: list[Callable[[], torch.Tensor]],
                      repeats: int) -> list[tuple[torch.Tensor, float, float]]:
    """For each fn: (output, median wall seconds, median process CPU seconds) over ``repeats`` runs, after
    one untimed warm-up run each. The runs are interleaved (fn 1, 2, ..., n, then again) so that load from
    other processes on a shared machine hits every method alike. CPU time is the steadier number there;
    wall time is what a user waits."""
    outs = [fn() for fn in fns]
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            outs[i] = fn()
            walls[i].append(time.perf_counter() - t0)
            cpus[i].append(time.process_time() - c0)
    return [(o, statistics.median(w), statistics.median(c))
            for o, w, c in zip(outs, walls, cpus, strict=True)]


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the passage (default 30)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per method; the median is shown")
    ap.add_argument("--preset", default="default", help="preset (default: default)")
    a = ap.parse_args()

    from pianoforge import phase
    from pianoforge.audio import spectral
    from pianoforge.audio.render import render_score
    from pianoforge.config import load_preset

    torch.set_num_threads(1)
    preset = load_preset(a.preset)
    cfg = preset.audio
    score = passage(a.seconds)
    n = int(round(a.seconds * cfg.sample_rate)) // cfg.hop_length * cfg.hop_length
    ref = render_score(score, cfg.sample_rate, preset.render, n_samples=n)
    x = torch.from_numpy(ref)
    mag = spectral.stft(x, cfg).abs()
    dur = n / cfg.sample_rate
    print(f"passage: {len(score.notes)} notes, {dur:.1f} s at {cfg.sample_rate} Hz; preset {preset.name} "
          f"(n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.window}, center={cfg.center}); "
          f"magnitude {tuple(mag.shape)}", file=sys.stderr)

    def lsds(y: torch.Tensor | np.ndarray) -> list[float]:
        """[LSD over (512, 1024, 2048), then each resolution alone], dB."""
        sr = cfg.sample_rate
        return [phase.log_spectral_distance(y, x, sr)] + [phase.log_spectral_distance(y, x, sr, (nf,))
                                                          for nf in RESOLUTIONS]

    rows = []
    rows.append(("reference (FluidSynth, itself)", "-", "-", "-", phase.spectral_convergence(x, mag, cfg),
                 lsds(ref)))
    mag2 = torch.cat([mag, mag], dim=-1)  # PGHI alone on twice the passage (the 60 s requirement)
    fns = [lambda m=method, k=n_iter: phase.reconstruct(mag, cfg, m, k) for _, method, n_iter in METHODS]
    results = timed_round_robin([*fns, lambda: phase.pghi(mag2, cfg)], a.repeats)
    _, wall2, cpu2 = results.pop()
    for (label, _, _), (y, wall, cpu) in zip(METHODS, results, strict=True):
        sc = phase.spectral_convergence(y, mag, cfg)
        d = lsds(y)
        rows.append((label, f"{wall:.3f}", f"{cpu:.3f}", f"{dur / wall:.0f}x", sc, d))
        print(f"  {label}: {wall:.3f} s (cpu {cpu:.3f} s), SC {sc:.4f}, LSD {d[0]:.2f} dB", file=sys.stderr)

    print(f"\n{dur:.1f} s piano passage, {cfg.sample_rate} Hz, n_fft {cfg.n_fft}, hop {cfg.hop_length}; "
          f"1 thread (torch {torch.__version__}, numpy {np.__version__}); {_cpu()}, "
          f"median of {a.repeats} interleaved runs; load average {_load()}\n")
    res = " | ".join(f"LSD {n}" for n in RESOLUTIONS)
    print(f"| method | wall s | CPU s | real-time factor (wall) | spectral convergence | LSD dB | {res} |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(RESOLUTIONS))
    for label, wall, cpu, rtf, sc, d in rows:
        print(f"| {label} | {wall} | {cpu} | {rtf} | {sc:.4f} | {d[0]:.2f} | "
              + " | ".join(f"{v:.2f}" for v in d[1:]) + " |")
    print(f"\nLSD dB = mean of the three single-resolution columns (phase.log_spectral_distance). "
          f"pghi alone on {2 * dur:.0f} s (the passage twice): {wall2:.3f} s wall, {cpu2:.3f} s CPU.")


if __name__ == "__main__":
    main()
