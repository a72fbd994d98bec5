"""Benchmark: start-up of a new ``pianoforge`` process (issue 16 targets: ``--help`` <= 0.3 s, a render of a 20 s
piece <= 1.5 s wall, on an idle machine).

One command: ``python bench/startup.py [--repeats 5] [--checkpoint CKPT]``.

Each line is the median of ``--repeats`` new processes (``OMP_NUM_THREADS=1``), wall time and CPU time (user +
system, from ``os.wait4``). On a loaded machine wall time includes waiting for a core; CPU time is then the
better estimate of the idle wall time. Rows: ``python -c pass`` and ``import torch`` (the floor any render
pays), ``pianoforge --help``, and ``pianoforge render`` of a dense 20 s piece (``bench/scale.py``'s MIDI) with
the default engine (``auto``: numpy for the shipped default, no torch import), with ``--engine torch``, and with
``--engine torch`` and ``PIANOFORGE_KERNELS=numba`` (what every render ran before the C kernels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import make_dense_midi  # noqa: E402


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0 and proc.stderr is not None:
        print(f"  ! {' '.join(cmd[:5])}: {proc.stderr.read().decode()[-300:]}")
    return wall, ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="new processes per row (median; default 5)")
    ap.add_argument("--checkpoint", help="perform checkpoint (default: the shipped one)")
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PIANOFORGE_KERNELS", None)
    ck = ["--checkpoint", a.checkpoint] if a.checkpoint else []
    py, pf = sys.executable, [sys.executable, "-m", "pianoforge.cli"]
    print(f"machine: {os.cpu_count()} cores, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"affinity {sorted(os.sched_getaffinity(0))}; median of {a.repeats} new processes")
    with tempfile.TemporaryDirectory(prefix="pf-startup-") as tmp:
        mid, wav = Path(tmp) / "p20.mid", Path(tmp) / "p20.wav"
        make_dense_midi(mid, 20 / 60)
        render = [*pf, "render", str(mid), "-o", str(wav), "--threads", "1", "--force", *ck]
        run(render, env)  # builds the C kernels if this checkout has not yet
        rows = [("python -c pass", [py, "-c", "pass"], env, None),
                ("python -c 'import torch'", [py, "-c", "import torch"], env, None),
                ("pianoforge --help", [*pf, "--help"], env, 0.3),
                ("pianoforge render, 20 s piece (engine auto: numpy, C kernels)", render, env, 1.5),
                ("same, --engine torch", [*render, "--engine", "torch"], env, None),
                ("same, --engine torch, PIANOFORGE_KERNELS=numba", [*render, "--engine", "torch"],
                 {**env, "PIANOFORGE_KERNELS": "numba"}, None)]
        print("\n| command | wall s | CPU s | target (idle wall) |")
        print("|---|---:|---:|---:|")
        for label, cmd, e, target in rows:
            runs = [run(cmd, e) for _ in range(a.repeats)]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"| {label} | {wall:.2f} | {cpu:.2f} | {'-' if target is None else f'{target} s'} |", flush=True)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
