"""``pianoforge data build`` and ``data info``: dataset stores."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pianoforge import cliargs
from pianoforge.cli.common import _n


def add_data(sub: argparse._SubParsersAction) -> None:
    from pianoforge.names import preset_names  # not pianoforge.config: the parser imports no yaml

    d = sub.add_parser("data", help="build and inspect dataset stores")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    b = dsub.add_parser("build", help="render/featurize a source into a versioned, memory-mapped store",
                        description="Build (or resume) a dataset store. Rerunning a finished build is a no-op.")
    b.add_argument("--source", choices=["corpus", "midi", "maestro"], default="corpus",
                   help="corpus: embedded music21 works + exercises; midi: a folder of MIDI files "
                        "(rendered with FluidSynth); maestro: a MAESTRO-layout folder (default: corpus)")
    b.add_argument("--input", type=Path, help="input folder (required for midi and maestro)")
    b.add_argument("--out", type=Path, required=True, help="output store folder")
    b.add_argument("--preset", default="default", help=f"preset name ({', '.join(preset_names())}) or YAML path")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a preset value, e.g. --set audio.sample_rate=22050 (repeatable)")
    b.add_argument("--workers", type=int, default=2, help="parallel worker processes (default 2)")
    b.add_argument("--limit", type=cliargs.positive_int,
                   help="build exactly N pieces: the first N of the folder (midi, maestro); corpus: the first "
                        "N - N//5 music21 works of the curated list and the first N//5 generated exercises "
                        "(--limit 4: 4 works; --limit 10: 8 works, 2 exercises)")
    b.add_argument("--cache-dir", type=Path, help="where converted corpus MIDI is cached "
                                                   "(default $PIANOFORGE_CACHE or ~/.cache/pianoforge)")
    b.add_argument("--allow-reserved", action="store_true",
                   help="evaluation-only store: admit reserved works, put every piece in the test split")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_data_build)
    i = dsub.add_parser("info", help="summarize a dataset store")
    i.add_argument("dir", type=Path, help="store folder")
    i.add_argument("--json", action="store_true", help="print machine-readable JSON")
    i.set_defaults(func=cmd_data_info)


def cmd_data_build(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect

    preset = load_preset(a.preset, a.set)
    t0 = time.perf_counter()
    specs, failures = collect(a.source, a.input, workers=a.workers, cache_dir=a.cache_dir, progress=not a.quiet,
                              pieces=a.limit)  # --limit N: exactly N pieces
    rep = build(specs, a.out, preset, workers=a.workers, progress=not a.quiet, listing_failures=failures,
                allow_reserved=a.allow_reserved,
                source_info={"kind": a.source, "input": str(a.input) if a.input else None, "limit": a.limit})
    dt = time.perf_counter() - t0
    m = rep.manifest
    if rep.up_to_date:
        print(f"{a.out}: up to date ({_n(rep.reused, 'piece')}); nothing to do")
        return 0
    secs = sum(p["seconds"] for p in m["pieces"])
    print(f"{a.out}: {_n(len(m['pieces']), 'piece')}, {secs / 60:.1f} min of audio "
          f"({rep.built} built, {rep.reused} reused) in {dt:.1f} s with preset {preset.name}")
    for sp, info in m["splits"].items():
        print(f"  {sp:<10} {info['pieces']:>4} {'piece ' if info['pieces'] == 1 else 'pieces'} "
              f"{info['seconds'] / 60:7.1f} min {info['examples']:>6} examples")
    if rep.skipped:
        print(f"  skipped {len(rep.skipped)}:")
        for s in rep.skipped:
            print(f"    {s['piece_id']}: {s['error']}")
    return 0


def cmd_data_info(a: argparse.Namespace) -> int:
    from pianoforge.data.store import FeatureStore

    st = FeatureStore(a.dir)
    m = st.manifest
    if a.json:
        print(json.dumps({k: m[k] for k in ("format_version", "fingerprint", "splits", "source")}, indent=1))
        return 0
    p = st.preset
    print(f"{a.dir}: {m['format']} v{m['format_version']}, preset {p.name}, created {m['created']}")
    print(f"  audio {p.audio.sample_rate} Hz, n_fft {p.audio.n_fft}, hop {p.audio.hop_length} "
          f"({p.audio.frame_rate:g} frames/s), {p.audio.n_bins} bins; score {p.score.n_channels} channels")
    for sp, info in m["splits"].items():
        print(f"  {sp:<10} {info['pieces']:>4} {'piece ' if info['pieces'] == 1 else 'pieces'} "
              f"{info['seconds'] / 60:7.1f} min {info['examples']:>6} examples")
    print(f"  skipped {len(m['skipped'])}")
    return 0
