"""Benchmark: dataset building throughput and memory.

One command: ``python bench/data_pipeline.py [--minutes 10] [--workers 2] [--preset default]``.

Side by side on the same pieces (at least ``--minutes`` of music from the embedded corpus):
  A. FluidSynth alone: render every piece to memory (the floor any pipeline built on it pays);
  B. the full pipeline: ``pianoforge data build`` (parse, render, encode, STFT, write the store).
Prints seconds of audio per wall second for each, the ratio B/A, and peak RSS of the main process and of
the largest worker. The corpus conversion (music21 -> MIDI, cached) happens before timing starts.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _render_only(args: tuple[str, dict]) -> float:
    from pianoforge.audio.render import render_score
    from pianoforge.config import Preset
    from pianoforge.midi.score import load_score

    midi, pdict = args
    p = Preset.from_dict(pdict)
    x = render_score(load_score(midi), p.audio.sample_rate, p.render)
    return len(x) / p.audio.sample_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of music to process (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--preset", default="default", help="preset (default: default)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="corpus MIDI cache (default ~/.cache/pianoforge)")
    a = ap.parse_args()

    from pianoforge.config import load_preset
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect
    from pianoforge.midi.score import load_score

    preset = load_preset(a.preset)
    specs, _ = collect("corpus", None, workers=a.workers, cache_dir=a.cache_dir, progress=False)
    chosen, total = [], 0.0
    for s in (s for s in specs if s.provenance.get("source") == "music21"):
        try:
            d = load_score(s.midi).end_time + preset.render.release_seconds
        except Exception:
            continue
        chosen.append(s)
        total += d
        if total >= a.minutes * 60:
            break
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}, "
          f"cores={__import__('os').cpu_count()}")
    print(f"pieces: {len(chosen)} music21 works, {total / 60:.1f} min of audio, preset {preset.name} "
          f"({preset.audio.sample_rate} Hz), workers {a.workers}")

    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn")) as ex:
        rendered = sum(ex.map(_render_only, [(str(s.midi), preset.to_dict()) for s in chosen]))
    t_render = time.perf_counter() - t0

    tmp = Path(tempfile.mkdtemp(prefix="pf-bench-"))
    try:
        t0 = time.perf_counter()
        rep = build(chosen, tmp / "store", preset, workers=a.workers, progress=False)
        t_build = time.perf_counter() - t0
        built = sum(p["seconds"] for p in rep.manifest["pieces"])
        disk = sum(f.stat().st_size for f in (tmp / "store").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print()
    print("| step | audio s | wall s | audio s / wall s |")
    print("|---|---:|---:|---:|")
    print(f"| A. FluidSynth render only | {rendered:.0f} | {t_render:.1f} | {rendered / t_render:.1f} |")
    print(f"| B. full build (render + encode + STFT + store) | {built:.0f} | {t_build:.1f} | {built / t_build:.1f} |")
    print()
    print(f"full pipeline / render-only throughput: {(built / t_build) / (rendered / t_render):.2f}")
    print(f"store size: {disk / 2**20:.0f} MiB ({disk / 2**20 / (built / 60):.1f} MiB per minute of audio)")
    print(f"peak RSS: main process {rss_self:.0f} MiB, largest worker {rss_child:.0f} MiB")
    print(f"skipped: {len(rep.skipped)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
