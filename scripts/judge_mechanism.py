"""Which step of the judge's note creation makes a render's extra notes (issue 14: the onset-F1 ratio under 1.0)?

``python scripts/judge_mechanism.py STORE CKPT [--split validation|all]``

basic-pitch (the judge, :mod:`pianoforge.evaluation.judge`) makes notes from its network's outputs in two
steps (``basic_pitch.note_creation.output_to_notes_polyphonic``): every onset peak over the threshold starts a
note that runs while the frame activation stays over its threshold, and then the "melodia trick" turns each
frame-active region that no such note claimed into a note of its own, starting where the region starts. This
script runs the judge's network once per audio and the note creation with and without each step (onsets
inferred from frame differences; the melodia trick), and reports the onset F1 of the render and of the stored
reference for each, then sorts the notes only the melodia trick made by what sounds at their pitch in the score:
a match of a score onset, inside a held note of the same pitch, one or more octaves under a sounding note,
octaves over one, *below* every sounding note (a subharmonic ghost under a chord), or other. The judge itself is unchanged: this only explains
its verdicts. Like ``sampler_val.py`` it refuses a corpus store's test split."""
from __future__ import annotations

import argparse

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.evaluation import judge as J
from pianoforge.inference import PerformRenderer
from pianoforge.midi.score import Score, load_score

STEPS = {"judge (both steps)": (True, True), "no inferred onsets": (False, True), "no melodia trick": (True, False)}
KINDS = ("matched", "inside held", "octave under a sounding note", "octave over", "under all sounding", "other")


def kind(note: J.Note, score: Score) -> str:
    """What the score has at a melodia-only note's pitch and time (one of :data:`KINDS`)."""
    t, p = note.start, note.pitch
    if any(abs(n.start - t) < J.ONSET_TOLERANCE and n.pitch == p for n in score.notes):
        return "matched"
    sounding = [n for n in score.notes if n.start - 0.1 <= t <= n.end + 0.5]
    if any(n.pitch == p and n.start < t <= n.end for n in sounding):
        return "inside held"
    if any((n.pitch - p) % 12 == 0 and n.pitch > p for n in sounding):
        return "octave under a sounding note"
    if any((n.pitch - p) % 12 == 0 for n in sounding):
        return "octave over"
    if sounding and p < min(n.pitch for n in sounding):
        return "under all sounding"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store")
    ap.add_argument("checkpoint")
    ap.add_argument("--split", choices=("validation", "all"), default="validation")
    a = ap.parse_args()
    store = FeatureStore(a.store)
    if a.split == "all" and store.manifest.get("source", {}).get("kind") == "corpus":
        raise SystemExit("refused: --split all on a corpus store includes its test split")
    sr = store.preset.audio.sample_rate
    metas = [m for sp in ("train", "validation", "test") for m in store.pieces(sp)] if a.split == "all" \
        else store.pieces(a.split)
    renderer = PerformRenderer.from_checkpoint(a.checkpoint)
    f1 = {s: np.zeros(2) for s in STEPS}
    kinds = {w: dict.fromkeys(KINDS, 0) for w in ("render", "reference")}
    for meta in metas:
        pid = meta["piece_id"]
        ref = np.asarray(store.arrays(pid).audio, dtype=np.float32)
        score = load_score(meta["midi"])
        audio = {"render": renderer.render_score(score).audio[:len(ref)], "reference": ref}
        outs = {w: J.network_outputs(x, sr) for w, x in audio.items()}
        line = [pid]
        for step, (io, mel) in STEPS.items():
            got = [J.score_notes(score, J.notes_from_outputs(outs[w], infer_onsets=io, melodia_trick=mel))["onset_f1"] for w in audio]
            f1[step] += got
            line.append(f"{step} {got[0]:.3f}/{got[1]:.3f}")
        for w, out in outs.items():
            plain = {(round(n.start, 4), n.pitch) for n in J.notes_from_outputs(out, melodia_trick=False)}
            for n in J.notes_from_outputs(out):
                if (round(n.start, 4), n.pitch) not in plain:
                    kinds[w][kind(n, score)] += 1
        print(" | ".join(line), flush=True)
    print(f"\nonset-F1 ratio (render / reference, summed over {len(metas)} pieces):")
    for step, (ours, theirs) in f1.items():
        print(f"  {step:20s} {ours / max(theirs, 1e-9):.4f}")
    print("notes only the melodia trick makes, by what the score sounds there:")
    for w, k in kinds.items():
        print(f"  {w:9s} " + ", ".join(f"{name} {n}" for name, n in k.items()) + f" (total {sum(k.values())})")


if __name__ == "__main__":
    main()
