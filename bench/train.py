"""Benchmark: training throughput of the ``lan2018`` and ``default`` presets on the same pieces, and the wall
time each needs to reach the lan2018 preset's final validation LMS error.

One command: ``python bench/train.py [--minutes 2] [--limit-works 16] [--threads N]``.

Both presets train, one after the other in this process, for the same wall-clock budget (``--minutes``,
fixed seed, early stopping off) on the first ``--limit-works`` works of the embedded corpus (and their
exercises), built once per geometry under ``--data-root`` (the same stores ``pianoforge experiment`` uses:
the same pieces and split, at 8 kHz / 50 ms frames for lan2018 and 16 kHz / hop 256 for default).
Printed per preset: parameters, training examples per epoch, training throughput in examples/s (optimizer
steps only: measured between logged steps of the same epoch, so validation and checkpoints are excluded),
seconds per epoch (all included), epochs done, final and best validation LMS, and the first epoch and
wall time at which its validation LMS reached the lan2018 run's final validation LMS ("not reached in
budget" otherwise). Each preset's LMS is normalized by its own store's per-bin statistics, so the target
is comparable across the two geometries only approximately (said in the output).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def train_throughput(run_dir: Path, batch_size: int) -> float | None:
    """Training examples per second from ``train_log.csv``: consecutive logged rows of the same epoch."""
    path = run_dir / "train_log.csv"
    if not path.exists():
        return None
    with path.open() as f:
        rows = [(int(float(r["epoch"])), float(r["step"]), float(r["elapsed_s"])) for r in csv.DictReader(f)]
    steps = secs = 0.0
    for (e0, s0, t0), (e1, s1, t1) in zip(rows, rows[1:], strict=False):
        if e0 == e1 and t1 > t0:
            steps += s1 - s0
            secs += t1 - t0
    return steps * batch_size / secs if secs > 0 else None


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}; {cores} usable cores; load average {load:.2f}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0, help="training wall time per preset (default 2)")
    ap.add_argument("--max-epochs", type=int, default=10_000, help="epochs per preset at most (default: no limit)")
    ap.add_argument("--limit-works", type=int, default=16, help="embedded-corpus works in the data (default 16)")
    ap.add_argument("--data-root", type=Path, default=Path("data/experiments"),
                    help="where the stores are built once and shared with `pianoforge experiment` "
                         "(default data/experiments)")
    ap.add_argument("--keep", type=Path, help="keep the run folders here (default: a temporary folder, removed)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice / OMP_NUM_THREADS)")
    ap.add_argument("--workers", type=int, default=1, help="dataset build processes (default 1)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a preset value in both presets (repeatable)")
    a = ap.parse_args()

    import torch

    from pianoforge.data.store import FeatureStore
    from pianoforge.evaluation.experiments import Budget, Variant, experiment_data, reach, train_variant

    if a.threads:
        torch.set_num_threads(a.threads)
    budget = Budget(minutes=a.minutes, max_epochs=a.max_epochs, limit_works=a.limit_works, seed=a.seed,
                    overrides=tuple(a.set), workers=a.workers, threads=a.threads, progress=False)
    stores = {g: experiment_data(a.data_root, g, a.limit_works, a.workers, progress=False)
              for g in ("lan2018", "default")}
    root = a.keep or Path(tempfile.mkdtemp(prefix="pf-bench-train-"))
    records: list[dict[str, Any]] = []
    try:
        for name in ("lan2018", "default"):
            run = root / name
            if run.exists():
                shutil.rmtree(run)  # a benchmark never reuses a finished run
            print(f"training {name} for {a.minutes:g} min on {stores[name]} ...", flush=True)
            t0 = time.perf_counter()
            rec = train_variant(Variant(name, name, geometry=name), stores[name], run, budget, log=lambda s: None)
            rec["wall"] = time.perf_counter() - t0
            rec["throughput"] = train_throughput(run, rec["batch_size"])
            if rec["throughput"] is None and rec["summary"].get("elapsed_s"):  # epochs shorter than a log interval
                rec["throughput"] = rec["summary"]["steps"] * rec["batch_size"] / rec["summary"]["elapsed_s"]
                rec["throughput_note"] = "*"
            p = rec["preset"]
            st = FeatureStore(stores[name])
            rec["examples"] = len(st.examples("train", p.data.example_frames(p.audio), p.data.stride_frames(p.audio)))
            records.append(rec)
    finally:
        if a.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    lan = [r["val/lms"] for r in records[0]["curve"] if "val/lms" in r]
    target = lan[-1] if lan else None
    print()
    print(f"machine: {machine()}")
    print(f"data: first {a.limit_works} embedded-corpus works + exercises (same pieces and split in both stores); "
          f"budget {a.minutes:g} min per preset, seed {a.seed}, early stopping off")
    print(f"target: the lan2018 run's final validation LMS = {target:.4g}" if target is not None else
          "target: none (the lan2018 run validated no epoch)")
    print()
    print("| preset | params | batch | train examples/epoch | train examples/s | s/epoch (incl. validation) | "
          "epochs | final val LMS | best val LMS | reaches lan2018 final val LMS at |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in records:
        c = [x for x in r["curve"] if "val/lms" in x]
        s_per_epoch = c[-1]["elapsed_s"] / c[-1]["epoch"] if c else None
        hit = reach(c, target) if (target is not None and c) else None
        where = f"epoch {hit[0]}, {hit[1]:.0f} s" if hit else "not reached in budget"
        tp = f"{r['throughput']:.1f}{r.get('throughput_note', '')}" if r["throughput"] else "—"
        spe = f"{s_per_epoch:.2f}" if s_per_epoch else "—"
        fin = f"{c[-1]['val/lms']:.4g}" if c else "—"
        best = f"{min(x['val/lms'] for x in c):.4g}" if c else "—"
        print(f"| {r['variant']} | {r['params']:,} | {r['batch_size']} | {r['examples']} | {tp} | {spe} | "
              f"{len(c)} | {fin} | {best} | {where} |")
    print()
    if any(r.get("throughput_note") for r in records):
        print("* epochs shorter than the 10-step log interval: examples/s over the whole run, validation included.")
    print("val LMS = MSE of per-bin z-scored log-magnitude on each store's validation split (each geometry "
          "normalized by its own statistics, so the cross-preset target is approximate).")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
