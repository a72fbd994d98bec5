"""Benchmark: does a render scale? ``pianoforge render`` vs the FluidSynth CLI on long, dense pieces.

One command: ``python bench/scale.py [--minutes 1 10 60] [--quick] [--checkpoint CKPT]``.

It writes its own dense piano MIDI of each length (about 8 notes/s: chords, runs and a melody; sustain pedal
every 2 s), then, in the same run and on the same files, times
  - ``pianoforge render IN -o OUT --threads 1`` as a user runs it (a new process, ``OMP_NUM_THREADS=1``);
  - the FluidSynth CLI at the project's reference settings (``fluidsynth -ni -q -g 0.5 -r 16000 -F OUT SF2
    IN``, see :mod:`pianoforge.audio.render`),
each process's peak RSS taken from the OS (``os.wait4`` resource usage of the child, ``ru_maxrss``). It prints
wall time, x real time, peak RSS, the ratios, and the issue-16 targets met or not:
  - 60-min peak RSS <= 1 GB and within 20 % of the 1-min piece's;
  - x real time at 60 min within 10 % of that at 1 min;
  - one-thread wall time <= FluidSynth's at 60 min.
Then start-up: ``pianoforge --help`` and a render of a 20 s piece in a new process (targets 0.3 s, 1.5 s),
median of 3. ``--quick``: 1 and 3 minutes (the targets then compare 3 min with 1 min).
Then batch: ten 20 s dense pieces rendered by one ``pianoforge render DIR -o OUT/ --threads 1`` (and one
``pianoforge reference DIR -o OUT/``) vs a shell loop of the FluidSynth CLI over the same files (target: the
batch render <= 2x the loop's wall). ``--batch-only``: only this part.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PIANOFORGE = [sys.executable, "-m", "pianoforge.cli"]


def make_dense_midi(path: Path, minutes: float, seed: int = 0) -> int:
    """A deterministic dense piano piece of ``minutes``; returns its number of notes."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    end = minutes * 60.0
    t, n = 0.0, 0
    while t < end - 1.0:
        bar = int(t // 2)  # a 2 s bar: a chord, a run of 8th notes, a melody note every half second
        root = 36 + (bar * 5) % 24
        for p in (root, root + 7, root + 12 + (bar % 3)):
            inst.notes.append(pretty_midi.Note(int(rng.integers(50, 90)), p, t, t + 1.9))
        for k in range(8):
            p = int(60 + (bar * 3 + k * 2) % 24)
            inst.notes.append(pretty_midi.Note(int(rng.integers(40, 100)), p, t + k * 0.25, t + k * 0.25 + 0.2))
        for k in range(4):
            p = int(rng.integers(72, 96))
            inst.notes.append(pretty_midi.Note(int(rng.integers(60, 110)), p, t + k * 0.5, t + k * 0.5 + 0.45))
        inst.control_changes += [pretty_midi.ControlChange(64, 100, t + 0.05), pretty_midi.ControlChange(64, 0, t + 1.85)]
        n += 15
        t += 2.0
    pm.instruments.append(inst)
    pm.write(str(path))
    return n


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall s, peak RSS in GB, exit status) of a child process, RSS from the OS (wait4's ru_maxrss)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        print(f"  ! {' '.join(cmd[:4])}...: exit {proc.returncode}: {proc.stderr.read().decode()[-300:]}")
    return wall, usage.ru_maxrss / 2**20, proc.returncode  # ru_maxrss is in KB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60], help="piece lengths (default 1 10 60)")
    ap.add_argument("--quick", action="store_true", help="1 and 3 minutes only")
    ap.add_argument("--checkpoint", help="perform checkpoint (default: the shipped one)")
    ap.add_argument("--repeats", type=int, default=3, help="start-up measurements per command (median)")
    ap.add_argument("--batch-only", action="store_true", help="only the batch of 10 short files vs a FluidSynth loop")
    a = ap.parse_args()
    minutes = [1.0, 3.0] if a.quick else sorted(a.minutes)

    from pianoforge.audio.render import find_soundfont

    sf2 = find_soundfont()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ck = ["--checkpoint", a.checkpoint] if a.checkpoint else []
    print(f"machine: {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"affinity {sorted(os.sched_getaffinity(0))}; soundfont {sf2.name}")
    if a.batch_only:
        with tempfile.TemporaryDirectory(prefix="pf-batch-") as tmp:
            return batch_vs_loop(Path(tmp), env, ck, sf2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pf-scale-") as tmp:
        d = Path(tmp)
        for m in minutes:
            mid = d / f"dense-{m:g}min.mid"
            notes = make_dense_midi(mid, m)
            seconds = m * 60
            pf = timed([*PIANOFORGE, "render", str(mid), "-o", str(d / "pf.wav"), "--threads", "1", "--force", *ck],
                       env)
            fs = (timed(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", "16000", "-F", str(d / "fs.wav"), str(sf2),
                         str(mid)], env) if shutil.which("fluidsynth") else (float("nan"), float("nan"), 1))
            rows.append((m, notes, seconds, pf, fs))
            print(f"{m:g} min ({notes} notes): pianoforge {pf[0]:.2f} s, {seconds / pf[0]:.0f}x real time, "
                  f"peak RSS {pf[1]:.2f} GB; FluidSynth {fs[0]:.2f} s, {fs[1]:.2f} GB", flush=True)
        print("\n| piece | notes | pianoforge render s | x real time | peak RSS GB | FluidSynth s | FluidSynth RSS GB "
              "| time / FluidSynth |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for m, notes, seconds, pf, fs in rows:
            print(f"| {m:g} min | {notes} | {pf[0]:.2f} | {seconds / pf[0]:.0f} | {pf[1]:.2f} | {fs[0]:.2f} | "
                  f"{fs[1]:.2f} | {pf[0] / fs[0]:.2f} |")
        short, long_ = rows[0], rows[-1]
        lm, sm = long_[0], short[0]
        rss_ok = long_[3][1] <= 1.0 and long_[3][1] <= 1.2 * short[3][1]
        rt_s, rt_l = short[2] / short[3][0], long_[2] / long_[3][0]
        print(f"\ntargets ({lm:g} min vs {sm:g} min):")
        print(f"- peak RSS {long_[3][1]:.2f} GB (<= 1 GB and within 20 % of {short[3][1]:.2f} GB): "
              f"{'met' if rss_ok else 'NOT met'} ({(long_[3][1] / short[3][1] - 1) * 100:+.0f} %)")
        print(f"- x real time {rt_l:.0f} vs {rt_s:.0f} (within 10 %): "
              f"{'met' if rt_l >= 0.9 * rt_s else 'NOT met'} ({(rt_l / rt_s - 1) * 100:+.0f} %)")
        print(f"- 1-thread wall {long_[3][0]:.1f} s vs FluidSynth {long_[4][0]:.1f} s: "
              f"{'met' if long_[3][0] <= long_[4][0] else 'NOT met'} ({long_[3][0] / long_[4][0]:.2f}x)")

        short_mid = d / "p20.mid"
        make_dense_midi(short_mid, 20 / 60)
        helps = [timed([sys.executable, "-m", "pianoforge.cli", "--help"], env)[0] for _ in range(a.repeats)]
        renders = [timed([*PIANOFORGE, "render", str(short_mid), "-o", str(d / "p20.wav"), "--threads", "1",
                          "--force", *ck], env)[0] for _ in range(a.repeats)]
        print(f"\nstart-up (median of {a.repeats}, new processes): `pianoforge --help` {statistics.median(helps):.2f} s "
              f"(target 0.3 s); render of a 20 s piece {statistics.median(renders):.2f} s (target 1.5 s)")
        batch_vs_loop(d, env, ck, sf2)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def batch_vs_loop(d: Path, env: dict[str, str], ck: list[str], sf2: Path, n: int = 10, seconds: float = 20.0) -> int:
    """Issue 16 part 3: ``n`` short pieces in one batch call vs a shell loop of the FluidSynth CLI."""
    src = d / "batch-in"
    src.mkdir()
    for i in range(n):
        make_dense_midi(src / f"short{i}.mid", seconds / 60, seed=i)
    files = sorted(src.glob("*.mid"))
    loop = "; ".join(f"fluidsynth -ni -q -g 0.5 -r 16000 -F {d / 'fs-loop.wav'} {sf2} {f}" for f in files)
    fs = timed(["bash", "-c", loop], env) if shutil.which("fluidsynth") else (float("nan"), 0.0, 1)
    pf = timed([*PIANOFORGE, "render", str(src), "-o", f"{d / 'batch-pf'}/", "--threads", "1", "--force", "-q", *ck],
               env)
    ref = timed([*PIANOFORGE, "reference", str(src), "-o", f"{d / 'batch-ref'}/", "--force", "-q"], env)
    ok = pf[2] == 0 and pf[0] <= 2 * fs[0]
    print(f"\nbatch of {n} x {seconds:g} s pieces: one `pianoforge render DIR -o OUT/ --threads 1` {pf[0]:.2f} s "
          f"(peak RSS {pf[1]:.2f} GB), one `pianoforge reference DIR -o OUT/` {ref[0]:.2f} s; FluidSynth CLI shell loop "
          f"{fs[0]:.2f} s; render batch / loop {pf[0] / fs[0]:.2f}x (target <= 2x: {'met' if ok else 'NOT met'}), "
          f"reference batch / loop {ref[0] / fs[0]:.2f}x")
    return 0 if pf[2] == 0 and ref[2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
