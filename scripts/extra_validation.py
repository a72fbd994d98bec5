"""A second validation set for choosing perform variants (issue 14): music21 works that are in no split of the
embedded corpus and not reserved, converted to piano MIDI exactly as the corpus converts its own.

``python scripts/extra_validation.py OUT_DIR [--chorales 24] [--palestrina 4] [--others 4]``

The seven-piece validation split chose the sampler's monotone variant by one piece (``TriadExercise``), and the
test split did not confirm it; a selection needs more pieces. The works are taken at even steps through the
sorted music21 listing of each composer (deterministic; nothing is chosen by its sound). Then build a store from
the folder and judge variants on all its pieces::

    pianoforge data build --source midi --input OUT_DIR --out data/val-extra --preset notesynth-subframe
    python scripts/sampler_val.py data/val-extra CKPT... --judge --split all
"""
import argparse
from pathlib import Path

from music21 import corpus

from pianoforge.data.corpus import CorpusWork, convert_work, corpus_works
from pianoforge.data.reserved import is_reserved
from pianoforge.midi.score import load_score


def pick(composer: str, n: int, taken: set[str]) -> list[str]:
    paths = sorted(str(p).split("/corpus/")[-1] for p in corpus.getComposer(composer))
    free = [p for p in paths if p not in taken and not is_reserved(p) and p.endswith((".mxl", ".xml", ".krn"))]
    if n <= 0 or not free:
        return []
    step = max(len(free) // n, 1)
    return free[::step][:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--chorales", type=int, default=24)
    ap.add_argument("--palestrina", type=int, default=4)
    ap.add_argument("--others", type=int, default=4, help="Mozart, Haydn, Beethoven works, split evenly")
    ap.add_argument("--max-seconds", type=float, default=150.0, help="leave out longer works (the judge's cost)")
    a = ap.parse_args()
    taken = {w.path for w in corpus_works()}
    works = pick("bach", a.chorales, taken) + pick("palestrina", a.palestrina, taken)
    for comp in ("mozart", "haydn", "beethoven"):
        works += pick(comp, -(-a.others // 3), taken)
    a.out.mkdir(parents=True, exist_ok=True)
    ok = 0
    for path in works:
        w = CorpusWork(path, 0.0, 0, "extra", path.split("/")[0])
        out = a.out / f"{w.piece_id}.mid"
        if out.exists():
            ok += 1
            continue
        try:
            convert_work(w, out)
        except RuntimeError as e:
            print(f"skipped: {e}")
            continue
        seconds = max((n.end for n in load_score(out).notes), default=0.0)
        if seconds > a.max_seconds:
            out.unlink()
            print(f"skipped: {path}: {seconds:.0f} s, longer than --max-seconds {a.max_seconds:g}")
            continue
        ok += 1
    print(f"{a.out}: {ok} of {len(works)} works as piano MIDI")


if __name__ == "__main__":
    main()
