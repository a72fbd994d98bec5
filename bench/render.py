"""Benchmark: MIDI -> WAV speed of the neural renderer vs the FluidSynth reference, side by side.

One command: ``python bench/render.py [--checkpoint CKPT] [--reps 5]``.

For a deterministic 60 s MIDI (scales, chords, melody, pedal; written by this script) it times, in one run:
  - ``pianoforge render`` as a user runs it (a new process: interpreter + torch import + model load +
    render + WAV write), with 1 and 2 threads;
  - the render alone inside a warm process (``PerformRenderer.render_midi``: parse, encode, network,
    phase, write), with 1 and 2 threads;
  - the FluidSynth CLI reference render of the same file (``pianoforge reference`` path: the CLI call).
Prints medians over ``--reps`` runs, real-time factors and ratios to FluidSynth.

Then the phase trade-off of the model path (1 thread, warm process, ``--no-tradeoff`` skips it): for each
phase method, the median time of the network and of the phase reconstruction, the real-time factor of the
whole render, and the quality of the result against the FluidSynth render of the same MIDI: multi-resolution
log-spectral distance (dB) and the basic-pitch judge's onset note-F1 against the score (the FluidSynth
render's own F1 is the ceiling).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_midi(path: Path, seconds: float = 60.0) -> Path:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    rng = np.random.default_rng(7)
    t, bar = 0.0, 0
    while t < seconds - 2:
        root = int(rng.choice([48, 50, 52, 53, 55, 57]))
        for p in (root, root + 4, root + 7):  # chord per bar, pedalled
            inst.notes.append(pretty_midi.Note(int(rng.integers(50, 90)), p, t, t + 1.9))
        inst.control_changes += [pretty_midi.ControlChange(64, 127, t + 0.01), pretty_midi.ControlChange(64, 0, t + 1.95)]
        for i in range(8):  # melody in eighths
            p = int(root + 12 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12]))
            inst.notes.append(pretty_midi.Note(int(rng.integers(60, 110)), p, t + i * 0.25, t + i * 0.25 + 0.24))
        t += 2.0
        bar += 1
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="perform checkpoint (default: the shipped default model)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement (default 5)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the test MIDI (default 60)")
    ap.add_argument("--no-tradeoff", action="store_true", help="skip the phase-method trade-off table")
    a = ap.parse_args()

    import torch

    from pianoforge.audio.render import find_soundfont, fluidsynth_binary
    from pianoforge.inference import PerformRenderer, shipped_checkpoint

    ckpt = Path(a.checkpoint) if a.checkpoint else shipped_checkpoint()
    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-render-"))
    mid = make_midi(tmp / "bench.mid", a.seconds)
    r = PerformRenderer.from_checkpoint(ckpt)
    sr = r.sample_rate
    exe = [sys.executable, "-m", "pianoforge.cli"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, torch {torch.__version__}")
    print(f"checkpoint: {ckpt.name} (preset {r.preset.name}, {r.model.num_parameters() / 1e6:.2f} M parameters, "
          f"phase {r.phase} x{r.iterations}, {r.engine} engine), {sr} Hz; MIDI: {a.seconds:.0f} s; median of {a.reps}")

    rows = []
    fs_cmd = [fluidsynth_binary(), "-ni", "-q", "-g", "0.5", "-R", "0", "-C", "0", "-r", str(sr),
              "-o", "audio.file.format=float", "-F", str(tmp / "fs.wav"), str(find_soundfont()), str(mid)]
    t_fs = median_time(lambda: subprocess.run(fs_cmd, check=True), a.reps)
    rows.append(("FluidSynth CLI (reference)", t_fs))
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [*exe, "render", str(mid), "-o", str(tmp / "nn.wav"), "-f", "--checkpoint", str(ckpt),
               "--threads", str(threads)]
        t_cli = median_time(lambda cmd=cmd, env=env: subprocess.run(cmd, check=True, env=env,
                                                                   capture_output=True), a.reps)
        rows.append((f"pianoforge render CLI, {threads} thread(s) (new process)", t_cli))
        torch.set_num_threads(threads)
        r.render_midi(mid, tmp / "warm.wav")  # warm-up (numba compile, allocator)
        t_in = median_time(lambda: r.render_midi(mid, tmp / "nn2.wav"), a.reps)
        rows.append((f"PerformRenderer.render_midi, {threads} thread(s) (warm process)", t_in))
    dur = a.seconds
    print()
    print("| path | median wall s | x real time | time / FluidSynth |")
    print("|---|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.3f} | {dur / t:.1f} | {t / t_fs:.2f} |")
    if not a.no_tradeoff:
        tradeoff(r, mid, tmp, a.reps)


def tradeoff(r, mid: Path, tmp: Path, reps: int) -> None:
    import soundfile as sf
    import torch

    from pianoforge.evaluation.judge import judge_audio
    from pianoforge.midi.score import load_score
    from pianoforge.phase import log_spectral_distance

    torch.set_num_threads(1)
    ref, _ = sf.read(tmp / "fs.wav", dtype="float32")
    ref = ref.mean(axis=1) if ref.ndim > 1 else ref
    score = load_score(mid)
    frames = r.encode(score)
    sr = r.sample_rate
    ref_f1 = judge_audio(ref, sr, score)["onset_f1"]
    t_net = median_time(lambda: r.predict(frames), reps)
    out = r.predict(frames)
    print()
    print(f"phase trade-off, 1 thread, {len(frames) * r.preset.audio.hop_length / sr:.1f} s of audio; network "
          f"{t_net:.3f} s; FluidSynth render onset F1 {ref_f1:.3f}")
    print("| phase | phase s | whole render x real time | LSD dB vs FluidSynth | onset F1 | F1 / FluidSynth |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, n_iter in (("zero", 0), ("pghi", 0), ("pghi+gl", 2), ("pghi+gl", 4), ("pghi+gl", 8),
                           ("griffinlim", 32)):
        r.synthesize(out, method, n_iter)  # warm-up (numba)
        t_ph = median_time(lambda m=method, k=n_iter: r.synthesize(out, m, k), reps)
        y = r.synthesize(out, method, n_iter)
        lsd = log_spectral_distance(y, ref, sr)
        f1 = judge_audio(y, sr, score)["onset_f1"]
        label = f"{method} x{n_iter}" if n_iter else method
        rtf = (len(y) / sr) / (t_net + t_ph)
        print(f"| {label} | {t_ph:.3f} | {rtf:.0f} | {lsd:.2f} | {f1:.3f} | {f1 / ref_f1:.2f} |")


if __name__ == "__main__":
    main()
