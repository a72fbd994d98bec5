"""Benchmark: speed (and score) of the judge -- basic-pitch on onnxruntime -- on a FluidSynth piano render.

One command: ``python bench/judge.py [--seconds 60] [--repeats 3] [--sample-rate 16000]``.

A deterministic piece of about ``--seconds`` (seeded melody over broken-chord accompaniment, block chords
under the sustain pedal, fast repeated notes, scales in both hands) is rendered with FluidSynth. The judge
(:func:`pianoforge.evaluation.judge.transcribe`) is run once untimed (imports, ONNX session, numba caches:
timed separately as start-up), then ``--repeats`` times: the median wall time gives the speed in audio
seconds per wall second (CPU seconds too: the
machine may be shared). Prints machine info, the speed, and the render's note scores against its own
score (the judge's ceiling on FluidSynth material), and checks that repeated runs give identical notes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def piece(seconds: float = 60.0, seed: int = 2018):
    """A deterministic piano piece of about ``seconds`` (sections cycle until the time is filled)."""
    from pianoforge.midi.score import Note, make_score

    rng = np.random.default_rng(seed)
    notes: list[Note] = []
    pedal: list[tuple[float, float]] = []
    major = np.array([0, 2, 4, 5, 7, 9, 11])
    t, section = 0.0, 0
    end = max(seconds - 1.5, 4.0)  # leave room for the release tail
    while t < end - 2.0:
        kind = section % 4
        root = int([48, 53, 55, 50][(section // 4) % 4])
        if kind == 0:  # melody in eighths over an Alberti bass, 4 s
            for i in range(16):
                s = t + 0.25 * i
                deg = int(rng.integers(0, 7))
                notes.append(Note(root + 24 + int(major[deg]), s, s + 0.23, int(rng.integers(70, 100))))
                notes.append(Note(root + (0, 7, 4, 7)[i % 4], s, s + 0.24, 55))
            t += 4.0
        elif kind == 1:  # pedalled block chords, half notes, 4 s
            for c in range(4):
                s = t + c
                pedal.append((s + 0.03, s + 0.95))
                shift = int(major[(2 * c) % 7])
                for p in (root - 12 + shift, root + shift, root + 4 + shift, root + 7 + shift, root + 12 + shift):
                    notes.append(Note(p, s, s + 0.9, 75))
            t += 4.0
        elif kind == 2:  # fast repeated notes and a trill, ~2.2 s
            for i in range(14):
                s = t + i * 0.08
                notes.append(Note(root + 19, s, s + 0.065, 60 + (i % 3) * 15))
            t += 14 * 0.08
            for i in range(16):
                s = t + i * 0.07
                notes.append(Note(root + 24 + (i % 2) * 2, s, s + 0.06, 72))
            t += 16 * 0.07
        else:  # two-octave scale in sixteenths, hands two octaves apart, 2 s
            for i in range(16):
                s = t + i * 0.125
                p = root + 12 + int(major[i % 7]) + 12 * (i // 7)
                notes.append(Note(p + 12, s, s + 0.12, 80))
                notes.append(Note(p - 12, s, s + 0.12, 65))
            t += 2.0
        section += 1
    return make_score(notes, pedal, source="bench/judge.py piece")


def machine_info() -> str:
    import onnxruntime
    import torch

    from pianoforge.evaluation.judge import judge_settings

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    s = judge_settings()
    return (f"{cpu}; {cores} usable cores (of {os.cpu_count()}); load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f}; Python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}, basic-pitch {s['basic_pitch_version']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the piece (default 60)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the median is shown (default 3)")
    ap.add_argument("--sample-rate", type=int, default=16000, help="render sample rate in Hz (default 16000)")
    a = ap.parse_args()

    from pianoforge.audio.render import render_score

    score = piece(a.seconds)
    audio = render_score(score, a.sample_rate)
    dur = len(audio) / a.sample_rate

    t0 = time.perf_counter()
    from pianoforge.evaluation.judge import score_notes, transcribe

    est = transcribe(audio, a.sample_rate)
    startup = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        again = transcribe(audio, a.sample_rate)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if again != est:
            print("warning: repeated transcriptions differ (the judge is not deterministic here)")
    wall = statistics.median(walls)
    res = score_notes(score, est)

    print(machine_info())
    print(f"piece: {len(score.notes)} notes, {dur:.1f} s FluidSynth render at {a.sample_rate} Hz")
    print(f"judge start-up (import, ONNX session, first run): {startup:.2f} s")
    print(f"judge: {wall:.2f} s per run (median of {a.repeats}: {', '.join(f'{w:.2f}' for w in walls)}) = "
          f"{dur / wall:.1f}x real time (audio seconds per wall second); CPU time {statistics.median(cpus):.2f} s "
          f"per run (all threads; {dur / statistics.median(cpus):.1f} audio seconds per CPU second)")
    print(f"reference render vs its score: onset P/R/F1 {res['onset_precision']:.3f} / {res['onset_recall']:.3f} / "
          f"{res['onset_f1']:.3f}; on+off F1 {res['onoff_f1']:.3f}; notes ref {res['n_ref']} est {res['n_est']}")


if __name__ == "__main__":
    main()
