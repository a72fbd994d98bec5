"""Source adapters: each turns an input into a list of :class:`PieceSpec` (one per piece).

- ``corpus``: the embedded default — music21 works converted to MIDI (cached) + generated exercises.
- ``midi``: any folder of ``.mid``/``.midi`` files (rendered with FluidSynth).
- ``maestro``: a MAESTRO-layout folder (``maestro-v*.csv`` or ``.json`` with its official split; audio +
  MIDI pairs).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pianoforge.data.reserved import is_reserved
from pianoforge.errors import PianoforgeError

SOURCES = ("corpus", "midi", "maestro")
SPLITS = ("train", "validation", "test")
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class PieceSpec:
    """One piece to build. ``audio`` None means: render the MIDI with FluidSynth."""

    piece_id: str
    midi: Path
    audio: Path | None = None
    split: str | None = None  # forced split (MAESTRO's official one; "train", or "test" for test-only exercises)
    provenance: dict[str, str] = field(default_factory=dict)


def safe_id(text: str) -> str:
    """A file-system-safe piece id."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "piece"


def midi_folder(root: str | Path) -> list[PieceSpec]:
    """Every MIDI file under ``root`` (recursive), id = relative path without suffix."""
    r = Path(root)
    if not r.is_dir():
        raise PianoforgeError(r, "input folder not found")
    out = []
    for p in sorted(q for q in r.rglob("*") if q.suffix.lower() in MIDI_SUFFIXES and q.is_file()):
        rel = p.relative_to(r).with_suffix("").as_posix()
        out.append(PieceSpec(safe_id(rel.replace("/", "__")), p, provenance={"source": "midi", "file": rel}))
    if not out:
        raise PianoforgeError(r, "no .mid or .midi files in the input folder")
    return out


MAESTRO_SPLITS = {"train": "train", "validation": "validation", "test": "test"}


def maestro(root: str | Path) -> list[PieceSpec]:
    """Pieces of a MAESTRO-layout folder, with its official split (rows that cannot be used are left out;
    :func:`maestro_listing` also returns them with their reasons)."""
    return maestro_listing(root)[0]


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it stays inside ``root`` (no absolute path, no ``..`` out of it), else None."""
    if not rel or Path(rel).is_absolute():
        return None
    p = (root / rel).resolve()
    return p if p.is_relative_to(root.resolve()) else None


def maestro_listing(root: str | Path) -> tuple[list[PieceSpec], list[tuple[str, str]]]:
    """(pieces, failures) of a MAESTRO-layout folder: each row's MIDI + audio pair with its official split
    (kept as given); a row whose file names leave the folder is a failure "(piece, reason)", not a piece."""
    r = Path(root)
    if not r.is_dir():
        raise PianoforgeError(r, "MAESTRO folder not found")
    metas = sorted(r.glob("maestro-v*.csv")) or sorted(r.glob("maestro-v*.json"))
    if not metas:
        raise PianoforgeError(r, "no maestro-v*.csv or maestro-v*.json metadata file (not a MAESTRO layout)")
    meta = metas[-1]
    rows = _read_maestro_meta(meta)
    out, failures = [], []
    for i, row in enumerate(rows):
        try:
            midi, audio, split = row["midi_filename"], row["audio_filename"], row["split"]
        except KeyError as e:
            raise PianoforgeError(meta, f"row {i + 1} lacks column {e.args[0]}") from e
        if split not in MAESTRO_SPLITS:
            raise PianoforgeError(meta, f"row {i + 1}: unknown split {split!r}")
        pid = safe_id(Path(str(midi)).with_suffix("").as_posix().replace("/", "__"))
        outside = [str(f) for f in (midi, audio) if _inside(r, str(f)) is None]
        if outside:
            failures.append((pid, f"{meta}: row {i + 1}: {outside[0]!r} is outside the MAESTRO folder {r}"))
            continue
        prov = {"source": "maestro", "midi": midi, "audio": audio,
                "composer": str(row.get("canonical_composer", "")), "title": str(row.get("canonical_title", ""))}
        out.append(PieceSpec(pid, r / midi, r / audio, MAESTRO_SPLITS[split], prov))
    return out, failures


def _read_maestro_meta(meta: Path) -> list[dict[str, str]]:
    try:
        if meta.suffix == ".csv":
            with meta.open(newline="") as f:
                return list(csv.DictReader(f))
        d = json.loads(meta.read_text())
    except (OSError, ValueError, csv.Error) as e:
        raise PianoforgeError(meta, f"unreadable metadata ({e})") from e
    if isinstance(d, list):
        return d
    # column-oriented json: {"split": {"0": "train", ...}, ...}
    cols = list(d)
    keys = list(d[cols[0]])
    return [{c: d[c][k] for c in cols} for k in keys]


def corpus_limit(n: int) -> tuple[int, int]:
    """``data build --source corpus --limit N``: exactly N pieces, the corpus's own mix of four works to one
    exercise: (the first ``N - N // 5`` music21 works of the curated list, the first ``N // 5`` exercises of
    :func:`pianoforge.data.exercises.exercise_specs`). ``--limit 5`` builds what ``--limit 4`` built before."""
    if n < 1:
        raise PianoforgeError(None, f"--limit must be at least 1, got {n}")
    return n - n // 5, n // 5


def corpus(cache_dir: str | Path | None = None, limit: int | None = None, workers: int = 1,
           progress: bool = True, exercises_limit: int | None = None) -> tuple[list[PieceSpec], list[tuple[str, str]]]:
    """The embedded corpus: music21 works (converted once into the cache) and generated exercises.

    ``limit`` keeps the first N music21 works of the curated list and, unless ``exercises_limit`` says how
    many, a proportionate share of the exercises (``N // 4``, at least one; the experiments' ``--limit-works``).
    Returns (pieces, failures) where failures are (work, reason).
    """
    from pianoforge.data import corpus as corpus_mod
    from pianoforge.data import exercises

    base = Path(cache_dir) if cache_dir else corpus_mod.default_cache_dir().parent
    m21_dir = base / "corpus-midi"
    ex_dir = base / "exercises-midi"
    m21_dir.mkdir(parents=True, exist_ok=True)
    ex_dir.mkdir(parents=True, exist_ok=True)
    converted, failed = corpus_mod.convert_corpus(m21_dir, limit=limit, workers=workers, progress=progress)
    works = {w.piece_id: w for w in corpus_mod.corpus_works()}
    names = exercises.exercise_specs()
    if exercises_limit is not None:
        names = names[:exercises_limit]
    elif limit is not None:
        names = names[: max(1, limit // 4)]
    pieces = []
    for pid, path in converted:
        w = works.get(pid)
        rel = w.path if w else pid
        if is_reserved(rel):  # defence in depth; the curated list already excludes them
            continue
        pieces.append(PieceSpec(pid, Path(path), provenance={"source": "music21", "work": rel,
                                                            "kind": w.kind if w else ""}))
    return pieces + exercise_pieces(ex_dir, names), failed


def exercise_pieces(ex_dir: str | Path, names: list[str] | None = None) -> list[PieceSpec]:
    """The generated exercises ``names`` (all if None) written into ``ex_dir``, each with its forced split
    (:func:`pianoforge.data.exercises.exercise_split`: "train", or "test" for the test-only ones, which also
    carry ``provenance["kind"]``). Forced splits leave the seeded split of the music21 works unchanged."""
    from pianoforge.data import exercises

    out = []
    for pid, path in exercises.write_exercises(Path(ex_dir), names):
        name = pid.removeprefix("ex-")
        prov = {"source": "exercise", "name": pid}
        kind = exercises.exercise_kind(name)
        if kind:
            prov["kind"] = kind
        out.append(PieceSpec(pid, Path(path), split=exercises.exercise_split(name), provenance=prov))
    return out


def collect(source: str, input_dir: str | Path | None, limit: int | None = None, workers: int = 1,
            cache_dir: str | Path | None = None, progress: bool = True,
            pieces: int | None = None) -> tuple[list[PieceSpec], list[tuple[str, str]]]:
    """Dispatch to the adapter named ``source``. Returns (pieces, failures found while listing).

    ``pieces``: exactly that many pieces (``data build --limit``; corpus: :func:`corpus_limit`); ``limit``:
    corpus, that many music21 works plus a quarter as many exercises (:func:`corpus`); else the first N."""
    if source not in SOURCES:
        raise PianoforgeError(None, f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    if source == "corpus":
        if pieces is not None:
            works, n_ex = corpus_limit(pieces)
            return corpus(cache_dir, works, workers, progress, exercises_limit=n_ex)
        return corpus(cache_dir, limit, workers, progress)
    limit = pieces if pieces is not None else limit
    if input_dir is None:
        raise PianoforgeError(None, f"--input DIR is required for --source {source}")
    pieces, failures = (midi_folder(input_dir), []) if source == "midi" else maestro_listing(input_dir)
    return (pieces[:limit] if limit else pieces), failures
