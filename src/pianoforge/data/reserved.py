"""Works of the music21 corpus reserved for independent evaluation: never part of the embedded corpus.

The list mirrors ``shared/reserved-works.txt`` (a test checks that they agree). Paths are relative to the
music21 corpus root. Exclusion is by *work*, not only by exact file: :func:`is_reserved` also matches

* the same path with another extension or spelling of separators and case (``cpebach/h186.mus``,
  ``CPEBACH\\H186.MXL``, ``mazurka06_2``);
* the same distinctive file stem in any folder (``bwv846.xml`` elsewhere is still BWV 846);
* for a reserved movement of a multi-movement folder (``mozart/k545/movement1_exposition.mxl``), every
  file in that folder (the folder is the work: K. 545);
* a pianoforge piece id derived from such a path (``m21-bach__bwv846``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RESERVED_WORKS: tuple[str, ...] = (
    "bach/bwv846.mxl",
    "joplin/maple_leaf_rag.mxl",
    "mozart/k545/movement1_exposition.mxl",
    "cpebach/h186.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "chopin/mazurka06-2.krn",
)

# Extensions of score files music21 reads (or ships unreadable twins of), plus MIDI.
_SCORE_EXTENSIONS = frozenset(
    {"mxl", "xml", "musicxml", "krn", "mus", "musx", "abc", "mei", "capx", "rntxt", "mid", "midi", "md", "nwc"}
)
_GENERIC_STEM = re.compile(r"^(movement|mvt|mov|part|no)?_?\d+\w*$")
_PIECE_ID_PREFIX = "m21-"


def _key(path: str) -> str:
    """Normalized work key: lower case, forward slashes, no extension, ``-``/``_``/blanks unified."""
    p = path.strip().replace("\\", "/").lower()
    if p.startswith(_PIECE_ID_PREFIX) and "/" not in p:
        p = p[len(_PIECE_ID_PREFIX) :].replace("__", "/")
    if "music21/corpus/" in p:
        p = p.split("music21/corpus/", 1)[1]
    p = p.lstrip("./").strip("/")
    folder, _, name = p.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if dot and ext in _SCORE_EXTENSIONS:
        name = stem
    name = re.sub(r"[\s_-]+", "_", name)
    return f"{folder}/{name}" if folder else name


def _reserved_keys() -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    exact = frozenset(_key(w) for w in RESERVED_WORKS)
    stems: set[str] = set()
    folders: list[str] = []
    for k in exact:
        folder, _, stem = k.rpartition("/")
        if _GENERIC_STEM.match(stem):
            folders.append(folder + "/")  # a movement: the whole folder is the work
        else:
            stems.add(stem)
    return exact, frozenset(stems), tuple(folders)


_EXACT, _STEMS, _FOLDERS = _reserved_keys()


def reserved_work_for(corpus_relpath: str) -> str | None:
    """The reserved work (an entry of :data:`RESERVED_WORKS`) that ``corpus_relpath`` belongs to, or None."""
    k = _key(corpus_relpath)
    stem = k.rpartition("/")[2]
    for work in RESERVED_WORKS:
        wk = _key(work)
        if k == wk or (stem in _STEMS and stem == wk.rpartition("/")[2]):
            return work
        folder = wk.rpartition("/")[0] + "/"
        if folder in _FOLDERS and (k + "/").startswith(folder):
            return work
    return None


def is_reserved(corpus_relpath: str) -> bool:
    """True if ``corpus_relpath`` (a corpus-relative path or a piece id) is, or belongs to, a reserved work."""
    return reserved_work_for(corpus_relpath) is not None


def assert_no_reserved(names: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first reserved work found among ``names`` (paths or piece ids)."""
    for name in names:
        work = reserved_work_for(name)
        if work is not None:
            raise ValueError(f"{name}: reserved for evaluation (work {work}); it must not be in the corpus")
