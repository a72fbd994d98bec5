"""Embedded corpus, music21 part: curated works of the music21 corpus, converted to piano MIDI on demand.

The music21 wheel ships a corpus of scores, so this part of the default training corpus is available
offline. ``corpus_works.json`` (next to this module, written by ``scripts/scan_music21_corpus.py``) lists
the curated works with their measured duration; see ``docs/corpus.md`` for what is in it and why.

Order of the list (tests check it): first a *demo set* of 8 short works of varied kinds (``limit=8`` gives
a small, varied demo), then every other work sorted by kind (keyboard, song, chamber, chorale, vocal),
composer and path.

Conversion: ``music21.corpus.parse`` (an Opus of one-voice ABC tunes is merged into one score) → repeats
expanded (if music21 cannot expand them, repeat signs are stripped and the score is played through once) →
MIDI at 480 ticks per quarter with every program set to 0 (acoustic grand piano: the corpus is *played on
the piano*) → checked with pretty_midi → written atomically to ``<cache_dir>/<piece_id>.mid``. Reserved
evaluation works (:mod:`pianoforge.data.reserved`) are filtered out again on load and refused by
:func:`convert_work`.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from pianoforge.data.reserved import is_reserved
from pianoforge.fsutil import write_bytes_atomic

WORKS_JSON = "corpus_works.json"
FORMAT_VERSION = 1
# Bump when the conversion below changes what is written, so caches are rebuilt.
CONVERTER_VERSION = 2
VERSION_FILE = "music21_version.txt"
PIECE_PREFIX = "m21-"
KIND_ORDER = ("keyboard", "song", "chamber", "chorale", "vocal")
DEMO_SIZE = 8
MIDI_PPQ = 480  # ticks per quarter note of the written MIDI


@dataclass(frozen=True)
class CorpusWork:
    """One curated work: ``path`` relative to the music21 corpus root, measured ``seconds`` and ``notes``."""

    path: str
    seconds: float
    notes: int
    kind: str
    composer: str

    @property
    def piece_id(self) -> str:
        """``"m21-"`` + path without extension, ``/`` → ``__``, other odd characters → ``_``."""
        stem = str(PurePosixPath(self.path).with_suffix(""))
        return PIECE_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "_", stem.replace("/", "__"))


def _load_json() -> dict[str, Any]:
    text = resources.files("pianoforge").joinpath("data", WORKS_JSON).read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{WORKS_JSON}: unknown format_version {data.get('format_version')!r}")
    return data


def corpus_works() -> list[CorpusWork]:
    """The curated works in their documented order, reserved evaluation works removed (defence in depth)."""
    names = [f.name for f in fields(CorpusWork)]
    works = [CorpusWork(**{n: w[n] for n in names}) for w in _load_json()["works"]]
    return [w for w in works if not is_reserved(w.path)]


def default_cache_dir() -> Path:
    """``$PIANOFORGE_CACHE/corpus-midi``, else ``~/.cache/pianoforge/corpus-midi``."""
    root = os.environ.get("PIANOFORGE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pianoforge") / "corpus-midi"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _strip_repeats(score: Any) -> None:
    """Remove repeat barlines, repeat expressions (D.C., segno, ...) and volta brackets, in place."""
    from music21 import bar, repeat, spanner, stream

    for m in score.recurse().getElementsByClass(stream.Measure):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(m, side), bar.Repeat):
                setattr(m, side, bar.Barline("regular"))
    for cls in (repeat.RepeatExpression, spanner.RepeatBracket):
        for el in list(score.recurse().getElementsByClass(cls)):
            if el.activeSite is not None:
                el.activeSite.remove(el)


def _piano_midi(data: bytes) -> bytes:
    """Every program change set to 0 (acoustic grand piano); resolution rescaled to ``MIDI_PPQ``.

    music21 writes 10080 ticks per quarter, so a piece longer than ~1000 quarters exceeds pretty_midi's
    sanity limit of 1e7 ticks ("largest tick ... likely corrupt"); 480 ticks per quarter avoids that.
    """
    import mido

    mid = mido.MidiFile(file=io.BytesIO(data))
    scale = MIDI_PPQ / mid.ticks_per_beat
    for track in mid.tracks:
        abs_ticks, prev = 0, 0
        for i, msg in enumerate(track):
            abs_ticks += msg.time
            new_abs = round(abs_ticks * scale)
            msg = msg.copy(time=new_abs - prev)
            if msg.type == "program_change":
                msg = msg.copy(program=0)
            track[i], prev = msg, new_abs
    mid.ticks_per_beat = MIDI_PPQ
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def score_to_midi_bytes(score: Any) -> tuple[bytes, bool]:
    """A music21 score as piano MIDI bytes, and whether its repeats were expanded (else played once)."""
    from music21 import midi, repeat

    try:
        data, expanded = midi.translate.streamToMidiFile(score).writestr(), True
    except repeat.ExpanderException:
        _strip_repeats(score)
        data, expanded = midi.translate.streamToMidiFile(score).writestr(), False
    return _piano_midi(data), expanded


def parse_score(corpus_relpath: str) -> Any:
    """``music21.corpus.parse``; an Opus (ABC files with one voice per tune) is merged into one score."""
    from music21 import corpus, stream

    score = corpus.parse(corpus_relpath)
    return score.mergeScores() if isinstance(score, stream.Opus) else score


def check_midi_bytes(data: bytes) -> Any:
    """Load MIDI bytes with pretty_midi; raise ``ValueError`` if unreadable or without notes."""
    import pretty_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    if not any(inst.notes for inst in pm.instruments):
        raise ValueError("converted MIDI has no notes")
    return pm


def atomic_write(out_path: Path, data: bytes) -> None:
    """Write ``data`` to ``out_path`` atomically (its folder is created; :func:`pianoforge.fsutil.write_bytes_atomic`)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out_path, data)


def convert_work(work: CorpusWork, out_path: Path) -> None:
    """Convert one work to piano MIDI at ``out_path`` (atomic); ``RuntimeError("<path>: <reason>")`` on failure."""
    if is_reserved(work.path):
        raise RuntimeError(f"{work.path}: reserved for evaluation, never converted into the corpus")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, _ = score_to_midi_bytes(parse_score(work.path))
        check_midi_bytes(data)
    except Exception as exc:  # music21 raises many exception types; report them all on one line
        raise RuntimeError(f"{work.path}: {_one_line(exc)}") from exc
    atomic_write(out_path, data)


def _convert_one(work: CorpusWork, out_path: Path) -> str | None:
    """Worker: convert and return None, or the one-line error."""
    try:
        convert_work(work, out_path)
    except RuntimeError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def _cache_stamp() -> str:
    import music21

    return f"music21 {music21.__version__}\nconverter {CONVERTER_VERSION}\n"


def _refresh_cache_version(cache_dir: Path) -> None:
    """If the cache was made by another music21 (or converter) version, delete its MIDI files."""
    stamp_path = cache_dir / VERSION_FILE
    stamp = _cache_stamp()
    old = stamp_path.read_text(encoding="utf-8") if stamp_path.exists() else None
    if old == stamp:
        return
    for stale in cache_dir.glob(f"{PIECE_PREFIX}*.mid"):
        stale.unlink()
    atomic_write(stamp_path, stamp.encode("utf-8"))


def _results(todo: list[tuple[CorpusWork, Path]], workers: int) -> Iterator[tuple[CorpusWork, str | None]]:
    if workers <= 1 or len(todo) <= 1:
        for work, out in todo:
            yield work, _convert_one(work, out)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [(work, pool.submit(_convert_one, work, out)) for work, out in todo]
        for work, fut in futures:
            try:
                err = fut.result()
            except Exception as exc:  # a crashed worker (BrokenProcessPool, ...): list it, go on
                err = _one_line(exc)
            yield work, err


def convert_corpus(
    cache_dir: Path, limit: int | None = None, workers: int = 1, progress: bool = True
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """Convert the first ``limit`` curated works (all if None) into ``cache_dir/<piece_id>.mid``.

    Files already present are kept (re-running is a no-op) unless the cache was made by another music21
    version. Returns ``([(piece_id, midi_path)], [(work_path, error)])`` in curated order; a failed
    conversion is listed, not raised.
    """
    from tqdm import tqdm

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _refresh_cache_version(cache_dir)
    works = corpus_works()
    if limit is not None:
        works = works[: max(limit, 0)]
    todo = [(w, cache_dir / f"{w.piece_id}.mid") for w in works]
    todo = [(w, out) for w, out in todo if not out.exists()]
    errors: dict[str, str] = {}
    with tqdm(total=len(todo), desc="music21 corpus → MIDI", unit="work", disable=not progress or not todo) as bar:
        for work, err in _results(todo, workers):
            if err is not None:
                errors[work.path] = err
            bar.update(1)
    done = [(w.piece_id, cache_dir / f"{w.piece_id}.mid") for w in works if w.path not in errors]
    return done, [(w.path, errors[w.path]) for w in works if w.path in errors]
