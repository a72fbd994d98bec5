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
    b.add_argument("--program", type=cliargs.int_in(0, 127),
                   help="render the MIDI with this General MIDI program, e.g. 40 violin, 19 church organ "
                        "(= --set render.program=N; default: the preset's, 0 grand piano)")
    b.add_argument("--tracks", type=cliargs.int_list(0, None), metavar="I,J",
                   help="keep only these tracks of every MIDI file (pretty_midi instrument order, from 0)")
    b.add_argument("--programs", type=cliargs.int_list(0, 127), metavar="P,Q",
                   help="keep only the tracks that play these General MIDI programs")
    b.add_argument("--align-shift", action="store_true",
                   help="recordings: shift audio by its estimated offset against the MIDI instead of "
                        "skipping it (= --set data.align_shift=true)")
    b.add_argument("--loudness", type=cliargs.float_in(-80.0, 0.0), metavar="DBFS",
                   help="normalize every piece to this gated RMS level, e.g. -20 (= --set data.loudness_db=X)")
    b.add_argument("--lowpass", type=cliargs.positive_float, metavar="HZ",
                   help="band-limit every piece alike at HZ (stores of mixed native rates; = --set data.lowpass_hz=HZ)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_data_build)
    al = dsub.add_parser("align", help="check one recording against its MIDI (offset, onset correlation)",
                         description="The alignment check `data build` runs on every MIDI + audio pair, for one "
                                     "pair: exit 0 if it would be kept, else one line saying why and exit 2.")
    al.add_argument("midi", type=Path, help="MIDI file")
    al.add_argument("audio", type=Path, help="its recording (.wav, .flac, ...)")
    al.add_argument("--preset", default="default", help="preset whose sample rate and data.* checks apply")
    al.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a preset value, e.g. --set data.onset_tolerance=0.05 (repeatable)")
    al.set_defaults(func=cmd_data_align)
    i = dsub.add_parser("info", help="summarize a dataset store")
    i.add_argument("dir", type=Path, help="store folder")
    i.add_argument("--json", action="store_true", help="print machine-readable JSON")
    i.set_defaults(func=cmd_data_info)


def cmd_data_build(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.data.build import build
    from pianoforge.data.sources import collect

    preset = load_preset(a.preset, a.set + _flag_overrides(a))
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
    ins = m.get("instruments", {})
    if ins.get("pieces_with_merged_tracks") or ins.get("dropped_drum_notes") or ins.get("pieces_with_non_piano_programs"):
        print(f"  instruments: {ins['pieces_with_merged_tracks']} piece(s) merged several tracks, "
              f"{ins['dropped_drum_notes']} drum note(s) dropped, {ins['pieces_with_non_piano_programs']} piece(s) "
              f"with non-piano programs; rendered/learnt as GM program {ins['render_program']}")
    for w in m.get("warnings", []):
        print(f"  warning: {w}")
    return 0


def _flag_overrides(a: argparse.Namespace) -> list[str]:
    """The shorthand flags of `data build` as preset overrides."""
    out = []
    if a.program is not None:
        out.append(f"render.program={a.program}")
    if a.tracks is not None:
        out.append(f"data.tracks=[{','.join(map(str, a.tracks))}]")
    if a.programs is not None:
        out.append(f"data.programs=[{','.join(map(str, a.programs))}]")
    if a.align_shift:
        out.append("data.align_shift=true")
    if a.loudness is not None:
        out.append(f"data.loudness_db={a.loudness}")
    if a.lowpass is not None:
        out.append(f"data.lowpass_hz={a.lowpass}")
    return out


def cmd_data_align(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.data.piece import recorded_audio
    from pianoforge.data.sources import PieceSpec
    from pianoforge.midi.score import load_score

    preset = load_preset(a.preset, a.set)
    score = load_score(a.midi, preset.data.tracks, preset.data.programs)
    _, meta = recorded_audio(PieceSpec("pair", a.midi, a.audio), score, preset)  # PianoforgeError: exit 2
    al = meta["alignment"]
    judged = "" if al["checked"] else f" (not judged: {al['why']})"
    print(f"{a.audio}: matches {a.midi}{judged}: offset {al['offset']:+.3f} s, onset correlation "
          f"{al['score']:.2f}, peak ratio {al['peak_ratio']:.2f}, native rate {meta['native_sr']} Hz"
          f"{', shifted' if al['shifted'] else ''}")
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
    for w in m.get("warnings", []):
        print(f"  warning: {w}")
    for lic in m.get("licences", []):
        print(f"  licence of {lic['what']}: {lic['licence']}")
    return 0
