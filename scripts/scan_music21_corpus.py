"""Scan the music21 corpus and write the curated list ``src/pianoforge/data/corpus_works.json``.

One-off and repeatable: ``.venv/bin/python scripts/scan_music21_corpus.py [--workers 2]`` (~10 min on two
cores). Measurements are cached in ``build/music21_scan.json`` (``--rescan`` to redo them), so changing the
selection rules below only re-runs the fast selection step.

1. Candidates: every readable score in the corpus folders listed in ``FOLDERS`` (monophonic folk-song
   books, lead sheets and the ``demos`` test files are left out), with deterministic samples of the two
   huge folders (Bach chorales, Palestrina). Reserved evaluation works are never parsed as candidates;
   ``*_old`` copies and scores over 4 MB (whole multi-movement quartets, 20-65 min) are skipped unparsed.
2. Each candidate is parsed and converted exactly as ``pianoforge.data.corpus.convert_work`` does; the MIDI
   is measured with pretty_midi (seconds = ``get_end_time()``, notes, pitch range).
3. A work is dropped if it failed, has < 20 notes, lasts > 8 min or < 20 s, leaves the piano range, is a
   single melodic line, or looks like a reserved work (title pattern, or a near-identical note sequence:
   ``reserved_lookalike``). Of several files of one work (formats, variants) only one is kept (``_dedupe``).
4. Selection: every solo keyboard work, every song, then chamber / chorale / vocal works by per-kind minute
   quotas (``QUOTA``), round-robin over composers, pieces of up to 5 min first, until
   ``--target-minutes`` (95) is reached.
5. Order: a demo set of 8 short works of varied kinds first, then the rest by kind, composer, path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
import warnings
import zipfile
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pianoforge.data.corpus import (  # noqa: E402
    DEMO_SIZE,
    FORMAT_VERSION,
    KIND_ORDER,
    CorpusWork,
    check_midi_bytes,
    parse_score,
    score_to_midi_bytes,
)
from pianoforge.data.reserved import RESERVED_WORKS, assert_no_reserved, is_reserved  # noqa: E402

FOLDERS = (
    "bach beach beethoven ciconia corelli haydn handel johnson_j_r josquin liliuokalani luca lusitano "
    "monteverdi mozart palestrina schoenberg schubert schumann_clara schumann_robert theoryExercises "
    "trecento verdi weber webern"
).split()
SAMPLE = {"bach": 90, "palestrina": 60}  # deterministic sample size of the huge folders
READABLE = {".mxl", ".xml", ".musicxml", ".krn", ".abc"}
EXT_RANK = {".mxl": 0, ".musicxml": 1, ".xml": 2, ".krn": 3, ".abc": 4}
MIN_SECONDS, MAX_SECONDS, MIN_NOTES = 20.0, 480.0, 20
QUOTA = {"chamber": 0.45, "chorale": 0.22, "vocal": 0.33}  # shares of the minutes left after keyboard+song
LONG_S, SLACK_S = 300.0, 20.0  # pieces over 5 min come last in their composer's queue; budget overshoot
DEMO_KINDS = ("chorale", "keyboard", "vocal", "chamber", "song", "keyboard", "vocal", "chamber")
DEMO_MAX_S = 100.0
RESERVED_TITLES = re.compile(
    r"maple\s*leaf|k\.?\s*545|bwv\.?\s*846|h\.?\s*186\b|wq\.?\s*55\s*/\s*4|mazurka.*op\.?\s*6\D+2\b"
    r"|polonaise.*op\.?\s*1\D+1\b|wohltemperi|well[- ]tempered|sonata facile|sonata semplice",
    re.I,
)
KEYBOARD = re.compile(r"piano|klavier|clavier|cembalo|harpsichord|keyboard|organ|orgel|clavichord", re.I)
INSTRUMENT = re.compile(
    r"viol|cello|contrabass|kontrabass|clarinet|klarinette|flute|fl[öo]te|oboe|horn|bassoon|fagott|trumpet", re.I
)
VOICE = re.compile(
    r"sopran|alto|altus|tenor|bass|voice|voce|canto|cantus|gesang|singstimme|vox|quint|sext|superius|triplum"
    r"|motetus|contratenor|choir|chor",
    re.I,
)
VOICE_CLASSES = {"Vocalist", "Choir", "Soprano", "MezzoSoprano", "Alto", "Tenor", "Baritone", "Bass"}
# Folders whose kind is known whatever the parts are called (part names and instruments there are unreliable).
FOLDER_KIND = {"bach": "chorale"} | dict.fromkeys(
    "ciconia josquin luca lusitano monteverdi palestrina trecento".split(), "vocal"
)
MAX_SCORE_MB = 4.0  # larger (uncompressed) scores are whole quartets of 20-60 min: not worth parsing
DUPLICATE = 0.6  # share of note-sequence grams above which two files are the same work in two formats


def _score_mb(path: Path) -> float:
    """Uncompressed size of a score file in MB (the largest member of a compressed .mxl)."""
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as z:
            return max(i.file_size for i in z.infolist()) / 1e6
    return path.stat().st_size / 1e6


def _candidates(corpus_root: Path) -> list[str]:
    out: list[str] = []
    for folder in FOLDERS:
        files = sorted(
            p.relative_to(corpus_root).as_posix()
            for p in (corpus_root / folder).rglob("*")
            if p.is_file() and p.suffix.lower() in READABLE
        )
        files = [f for f in files if not is_reserved(f) and not Path(f).stem.endswith("_old")]
        files = [f for f in files if _score_mb(corpus_root / f) <= MAX_SCORE_MB]
        n = SAMPLE.get(folder)
        if n and len(files) > n:
            files = sorted(files, key=lambda f: hashlib.sha1(f.encode()).hexdigest())[:n]
        out += sorted(files)
    return out


def _role(part: dict[str, Any]) -> str:
    """"keyboard", "instrument", "voice" or "other", from the part name first, then lyrics and classes."""
    name = part["name"]
    if KEYBOARD.search(name):
        return "keyboard"
    if INSTRUMENT.search(name):
        return "instrument"
    if VOICE.search(name) or part["lyrics"] or VOICE_CLASSES & set(part["classes"]):
        return "voice"
    if part["staff"] or "KeyboardInstrument" in part["classes"]:
        return "keyboard"
    return "instrument" if part["classes"] else "other"


def _kind(composer: str, parts: list[dict[str, Any]]) -> str:
    """keyboard (solo), song (voices + accompaniment), vocal (voices alone), chorale (Bach), chamber."""
    if composer in FOLDER_KIND:
        return FOLDER_KIND[composer]
    roles = {_role(p) for p in parts}
    if roles == {"keyboard"}:
        return "keyboard"
    if "voice" in roles:
        return "vocal" if roles <= {"voice", "other"} else "song"
    return "chamber"


def measure(relpath: str) -> dict[str, Any]:
    """Parse and convert one corpus file; return its measurements or its error (runs in a worker)."""
    from music21 import stream

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    try:
        score = parse_score(relpath)
        parts = []
        for part in score.parts:
            classes = {c.__name__ for i in part.getInstruments(recurse=True) for c in type(i).__mro__}
            parts.append({
                "name": part.partName or "",
                "classes": sorted(classes - {"Instrument", "Music21Object", "ProtoM21Object", "object"}),
                "lyrics": any(n.lyrics for n in part.recurse().notes),
                "staff": isinstance(part, stream.PartStaff),
            })
        md = score.metadata
        title = " / ".join(x for x in (md.title, md.movementName, md.composer) if x) if md else ""
        data, expanded = score_to_midi_bytes(score)
        pm = check_midi_bytes(data)
    except Exception as exc:  # any music21 / pretty_midi failure: record it
        return {"path": relpath, "error": " ".join(str(exc).split())[:200] or type(exc).__name__}
    notes = sorted((n.start, n.pitch) for inst in pm.instruments for n in inst.notes)
    pitches = [p for _, p in notes]
    return {
        "path": relpath,
        "seconds": round(pm.get_end_time(), 2),
        "notes": len(notes),
        "pitch_range": [min(pitches), max(pitches)] if pitches else [0, 0],
        "parts": parts,
        "repeats_expanded": expanded,
        "drums": any(inst.is_drum for inst in pm.instruments),
        "title": title,
        "pitch_seq": pitches[:600],
        "parse_seconds": round(time.perf_counter() - t0, 2),
    }


def _grams(seq: list[int], n: int = 6) -> set[tuple[int, ...]]:
    iv = [b - a for a, b in zip(seq, seq[1:], strict=False)]
    return {tuple(iv[i : i + n]) for i in range(len(iv) - n + 1)}


def reserved_lookalike(rec: dict[str, Any], refs: dict[str, set[tuple[int, ...]]]) -> str | None:
    """Reason to treat ``rec`` as a copy of a reserved work: its title, or > 40% shared 6-interval grams."""
    if RESERVED_TITLES.search(rec.get("title", "")):
        return f"title {rec['title']!r} names a reserved work"
    mine = _grams(rec["pitch_seq"])
    for work, ref in refs.items():
        shared = _shared(mine, ref)
        if shared > 0.4:
            return f"{shared:.0%} of its note sequence matches reserved {work}"
    return None


def _shared(a: set[tuple[int, ...]], b: set[tuple[int, ...]]) -> float:
    return len(a & b) / max(1, min(len(a), len(b)))


def _dedupe(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One file per work: drop other formats (same piece id), Bach chorale variants and near-identical notes."""
    kept: list[tuple[dict[str, Any], set[tuple[int, ...]]]] = []
    ids: set[str] = set()
    for r in sorted(recs, key=lambda r: (EXT_RANK.get(Path(r["path"]).suffix, 9), r["path"])):
        base = CorpusWork(r["path"], 0, 0, "", "").piece_id
        if r["composer"] == "bach":
            base = re.sub(r"-[a-z0-9]+$", "", base)  # chorale variants: bwv248.23-2 / bwv248.23-s
        grams = _grams(r["pitch_seq"])
        same = next((k["path"] for k, g in kept if _shared(grams, g) > DUPLICATE), None)
        if base in ids or same:
            print(f"skip {r['path']}: same work as {same or base}")
            continue
        ids.add(base)
        kept.append((r, grams))
    return sorted((r for r, _ in kept), key=lambda r: r["path"])


def _select(pool: list[dict[str, Any]], target_s: float) -> list[dict[str, Any]]:
    chosen = [r for r in pool if r["kind"] in ("keyboard", "song")]
    left = max(0.0, target_s - sum(r["seconds"] for r in chosen))
    for kind, share in QUOTA.items():
        groups: dict[str, list[dict[str, Any]]] = {}  # per composer: pieces up to LONG_S first, else shuffled
        for r in sorted(pool, key=lambda r: (r["seconds"] > LONG_S, hashlib.sha1(r["path"].encode()).digest())):
            if r["kind"] == kind:
                groups.setdefault(r["composer"], []).append(r)
        budget, total, added = share * left + SLACK_S, 0.0, True
        while added:  # round-robin over composers: one piece each that still fits the kind's budget
            added = False
            for composer in sorted(groups):
                r = next((r for r in groups[composer] if total + r["seconds"] <= budget), None)
                if r is not None:
                    groups[composer].remove(r)
                    chosen.append(r)
                    total, added = total + r["seconds"], True
    return chosen


def _order(chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Demo set first (one short work per slot of ``DEMO_KINDS``, new composers preferred), then the rest."""
    rest = list(chosen)
    demo: list[dict[str, Any]] = []
    for kind in DEMO_KINDS[:DEMO_SIZE]:
        used = {d["composer"] for d in demo}
        short = [r for r in rest if r["seconds"] <= DEMO_MAX_S]
        if short:  # a work of the slot's kind if there is one, else any short work
            best = min(short, key=lambda r: (r["kind"] != kind, r["composer"] in used, abs(r["seconds"] - 45)))
            demo.append(best)
            rest.remove(best)
    rest.sort(key=lambda r: (KIND_ORDER.index(r["kind"]), r["composer"], r["path"]))
    return demo + rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="parallel parser processes (default 2)")
    ap.add_argument("--target-minutes", type=float, default=95.0, help="minutes of music21 music to select")
    ap.add_argument("--records", type=Path, default=ROOT / "build" / "music21_scan.json", help="scan cache")
    ap.add_argument("--rescan", action="store_true", help="re-measure every candidate (ignore --records)")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "pianoforge" / "data" / "corpus_works.json")
    args = ap.parse_args()

    import music21

    corpus_root = Path(music21.__file__).parent / "corpus"
    cands = _candidates(corpus_root)
    old = {} if args.rescan or not args.records.exists() else json.loads(args.records.read_text())
    old = old if old.get("music21_version") == music21.__version__ else {}
    recs = {r["path"]: r for r in old.get("records", []) if r["path"] in cands}
    todo = [c for c in cands if c not in recs]
    print(f"{len(cands)} candidates, {len(todo)} to measure, {args.workers} workers", flush=True)
    t0 = time.perf_counter()
    with get_context("spawn").Pool(args.workers, maxtasksperchild=25) as pool:
        # Reserved works are parsed in memory only, as references for reserved_lookalike; never written.
        ref_recs = pool.map(measure, RESERVED_WORKS)
        refs = {w: _grams(r.get("pitch_seq", [])) for w, r in zip(RESERVED_WORKS, ref_recs, strict=True)}
        for i, rec in enumerate(pool.imap_unordered(measure, todo), 1):
            recs[rec["path"]] = rec
            info = rec.get("error") or f"{rec['seconds']:.0f}s {rec['notes']} notes {rec['parse_seconds']}s"
            print(f"[{i}/{len(todo)} {time.perf_counter() - t0:.0f}s] {rec['path']}: {info}", flush=True)
    args.records.parent.mkdir(parents=True, exist_ok=True)
    records = [recs[c] for c in cands]
    args.records.write_text(json.dumps({"music21_version": music21.__version__, "records": records}))

    ok, failed = [], []
    for r in records:
        if "error" in r:
            failed.append({"path": r["path"], "error": r["error"]})
            continue
        r["composer"] = r["path"].split("/", 1)[0]
        r["kind"] = _kind(r["composer"], r["parts"])
        why = reserved_lookalike(r, refs)
        lo, hi = r["pitch_range"]
        why = why or ("too few notes" if r["notes"] < MIN_NOTES else None)
        why = why or ("too long" if r["seconds"] > MAX_SECONDS else "too short" if r["seconds"] < MIN_SECONDS else None)
        why = why or ("outside the piano range" if lo < 21 or hi > 108 or r["drums"] else None)
        why = why or ("a single melodic line" if len(r["parts"]) == 1 and r["kind"] != "keyboard" else None)
        if why:
            print(f"skip {r['path']}: {why}")
        else:
            ok.append(r)
    works = _order(_select(_dedupe(ok), args.target_minutes * 60))
    assert_no_reserved(w["path"] for w in works)
    keys = ("path", "seconds", "notes", "kind", "composer", "title", "pitch_range", "repeats_expanded")
    out = {
        "format_version": FORMAT_VERSION,
        "music21_version": music21.__version__,
        "generated_by": "scripts/scan_music21_corpus.py",
        "total_seconds": round(sum(w["seconds"] for w in works), 1),
        "works": [{k: w[k] for k in keys} | {"parts": len(w["parts"])} for w in works],
        "failed": failed,
    }
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(works)} works, {out['total_seconds'] / 60:.1f} min, {len(failed)} failed")


if __name__ == "__main__":
    main()
