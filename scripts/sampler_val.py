"""Validation-split LSD (and, with ``--judge``, onset note-F1 ratio to the reference) of perform checkpoints:
the selection a sampler variant is chosen by, never the test split.

``python scripts/sampler_val.py STORE CKPT [CKPT ...] [--judge] [--split validation|all]``

``--split all``: every piece of the store (a store built only for choosing, such as the one
``scripts/extra_validation.py`` makes; never the embedded corpus's test split).

Prints each piece's multi-resolution LSD (dB) against the stored reference and the mean; with ``--judge``
also the basic-pitch onset F1 of the render and of the stored reference audio against the score, and
their ratio (sum of model F1 / sum of reference F1, as ``eval`` reports per subset)."""
import sys

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.evaluation.judge import judge_audio
from pianoforge.evaluation.metrics import lsd_db
from pianoforge.inference import PerformRenderer
from pianoforge.midi.score import load_score

argv = sys.argv[1:]
split = "validation"
if "--split" in argv:
    i = argv.index("--split")
    split = argv[i + 1]
    del argv[i:i + 2]
args = [a for a in argv if not a.startswith("--")]
judge = "--judge" in argv
store = FeatureStore(args[0])
sr = store.preset.audio.sample_rate
ref_f1: dict[str, float] = {}
for ckpt in args[1:]:
    r = PerformRenderer.from_checkpoint(ckpt)
    vals, f1s, rf1s = [], [], []
    metas = [m for sp in ("train", "validation", "test") for m in store.pieces(sp)] if split == "all" \
        else store.pieces(split)
    if split == "test" or (split == "all" and store.manifest.get("source", {}).get("kind") == "corpus"):
        raise SystemExit("refused: choosing a variant on the corpus's test split is tuning to it")
    for meta in metas:
        pid = meta["piece_id"]
        ref = np.asarray(store.arrays(pid).audio, dtype=np.float32)
        score = load_score(meta["midi"])
        y = r.render_score(score).audio[:len(ref)]
        vals.append(lsd_db(y, ref[:len(y)], sr))
        if judge:
            if pid not in ref_f1:
                ref_f1[pid] = judge_audio(ref, sr, score)["onset_f1"]
            f1s.append(judge_audio(y, sr, score)["onset_f1"])
            rf1s.append(ref_f1[pid])
    line = f"{ckpt} {split} LSD " + " ".join(f"{v:.2f}" for v in vals) + f" mean {np.mean(vals):.3f}"
    if judge:
        line += (" | onset F1 " + " ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(f1s, rf1s, strict=True))
                 + f" ratio {sum(f1s) / max(sum(rf1s), 1e-9):.4f}")
    print(line, flush=True)
