"""Benchmark: is ``pianoforge generate -n N`` bounded? Peak RSS and wall time for several N, new processes.

One command: ``python bench/generate.py [--n 8 64 256] [--iterations 4] [--checkpoint CKPT]``.

Each N runs ``pianoforge generate -n N -o TMP --batch 16 -q --threads 1`` (the shipped generator by default) in
its own process; peak RSS is the child's ``ru_maxrss`` (``os.wait4``'s resource usage, what
``resource.getrusage(RUSAGE_CHILDREN)`` reports for it). Generation works in batches of 16 clips written as it
goes, so the peak should not grow with N. ``--iterations 4`` (Griffin-Lim, instead of the checkpoint's 32)
keeps the run short; it does not change what is held in memory.

``--seconds 60 600``: also one long clip of each length (``generate -n 1 --seconds S``: the tiled generator,
docs/improvise.md "Long clips"), with its wall time, x real time and peak RSS; the peak should not grow with
the length. ``--n`` with no value skips the clip counts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS GB, exit status) of a child process, from the OS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and proc.stderr is not None:
        print(f"  ! exit {code}: {proc.stderr.read().decode()[-300:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 2**20, code  # ru_maxrss: KB on Linux


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="*", default=[8, 64, 256], help="clip counts (default 8 64 256)")
    ap.add_argument("--seconds", type=float, nargs="*", default=[], help="long clips of these lengths (default none)")
    ap.add_argument("--iterations", type=int, default=4, help="Griffin-Lim iterations (default 4)")
    ap.add_argument("--checkpoint", help="GAN generator (default: the shipped one)")
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ck = ["--checkpoint", a.checkpoint] if a.checkpoint else []
    print(f"machine: {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"affinity {sorted(os.sched_getaffinity(0))}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pf-generate-") as tmp:
        for n in a.n:
            out = Path(tmp) / f"n{n}"
            cmd = [sys.executable, "-m", "pianoforge.cli", "generate", "-n", str(n), "-o", str(out), "--batch", "16",
                   "--iterations", str(a.iterations), "--threads", "1", "-q", *ck]
            wall, cpu, rss, code = run(cmd, env)
            files = len(list(out.glob("*.wav"))) if out.is_dir() else 0
            rows.append((n, wall, cpu, rss, files))
            print(f"generate -n {n}: {files} WAVs, wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.3f} GB", flush=True)
    if rows:
        print("\n| -n | WAVs written | wall s | CPU s | CPU s / clip | peak RSS GB |")
        print("|---:|---:|---:|---:|---:|---:|")
    for n, wall, cpu, rss, files in rows:
        print(f"| {n} | {files} | {wall:.1f} | {cpu:.1f} | {cpu / n:.3f} | {rss:.3f} |")
    hi = rows[-1] if rows else None
    for lo in rows[:-1]:  # below one batch (16 clips) the batch itself is smaller: compare with full batches too
        print(f"peak RSS at -n {hi[0]} vs -n {lo[0]}: {(hi[3] / lo[3] - 1) * 100:+.1f} %"
              + ("" if lo[0] >= 16 else " (-n below one batch of 16: fewer clips held at once)"))
    full = [r for r in rows[:-1] if r[0] >= 16]
    if full and hi is not None:
        print(f"bounded (peak RSS at -n {hi[0]} within 10 % of -n {full[0][0]}, both full batches): "
              f"{'yes' if hi[3] <= 1.1 * full[0][3] else 'NO'}")
    long_rows = []
    with tempfile.TemporaryDirectory(prefix="pf-generate-long-") as tmp:
        for sec in a.seconds:
            out = Path(tmp) / f"s{sec:g}"
            cmd = [sys.executable, "-m", "pianoforge.cli", "generate", "-n", "1", "--seconds", f"{sec:g}", "-o", str(out),
                   "--iterations", str(a.iterations), "--threads", "1", "-q", *ck]
            wall, cpu, rss, code = run(cmd, env)
            files = len(list(out.glob("*.wav"))) if out.is_dir() else 0
            long_rows.append((sec, wall, cpu, rss, files))
            print(f"generate --seconds {sec:g}: {files} WAV, wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.3f} GB",
                  flush=True)
    if long_rows:
        print("\n| --seconds | WAV | wall s | CPU s | x real time | peak RSS GB |")
        print("|---:|---:|---:|---:|---:|---:|")
        for sec, wall, cpu, rss, files in long_rows:
            print(f"| {sec:g} | {files} | {wall:.1f} | {cpu:.1f} | {sec / max(wall, 1e-9):.0f} | {rss:.3f} |")
        if len(long_rows) > 1:
            lo, hi = long_rows[0], long_rows[-1]
            print(f"peak RSS at {hi[0]:g} s vs {lo[0]:g} s: {(hi[3] / lo[3] - 1) * 100:+.1f} %")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if all(r[4] == r[0] for r in rows) and all(r[4] == 1 for r in long_rows) else 1


if __name__ == "__main__":
    sys.exit(main())
