"""How far apart are a GAN store's splits, and a generator from each? (issue 19: which split to judge FD on)

``python scripts/gan_split_fd.py [CHECKPOINT ...] --data STORE [-n 128] [--seed 0]
[--strike-threshold T --strike-floor F]``

Takes ``-n`` evenly spaced clips of the validation and test splits and ``2 n`` of the train split (halves A and B:
even and odd), their features as ``eval gan`` computes them (:func:`~pianoforge.evaluation.gan_metrics.feature_matrix`),
and prints the Fréchet distance between train halves, train and each held-out split, validation and test; then,
for each checkpoint, ``-n`` clips from seeds ``--seed``.. (as ``eval gan``; NoteGAN with its strike rule, or the one
given) against train A, train B, validation and test. Also prints each split's number of works.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="*")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--strike-threshold", type=float)
    ap.add_argument("--strike-floor", type=float)
    a = ap.parse_args()
    import torch

    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.evaluation.gan_metrics import feature_matrix, frechet_distance
    from pianoforge.improvise import GanGenerator

    torch.set_num_threads(a.threads)
    store = FeatureStore(a.data)
    sr = store.preset.audio.sample_rate
    feats = {}
    for split, n in (("validation", a.n), ("test", a.n), ("train", 2 * a.n)):
        ds = GanImages(store, split)
        idx = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
        feats[split] = feature_matrix([ds.audio(int(i)).numpy() for i in idx], sr)
        print(f"{split}: {len(ds)} clips of {len(ds.pieces)} works; {len(idx)} taken")
    refs = {"train A": feats["train"][0::2], "train B": feats["train"][1::2], "validation": feats["validation"],
            "test": feats["test"]}
    fd = frechet_distance
    print(f"FD train A - train B {fd(refs['train A'], refs['train B']):.1f}; validation - test "
          f"{fd(refs['validation'], refs['test']):.1f}")
    for split in ("validation", "test"):
        print(f"FD train A / B - {split} {fd(refs['train A'], refs[split]):.1f} / {fd(refs['train B'], refs[split]):.1f}")
    for ck in a.checkpoints:
        g = GanGenerator.from_checkpoint(ck)
        g.set_strike_rule(a.strike_threshold, a.strike_floor)
        f = feature_matrix(g.generate_clips(a.n, a.seed).audio, sr)
        row = "  ".join(f"{k} {fd(f, v):.1f}" for k, v in refs.items())
        print(f"{ck} (strike rule {g.strike_threshold:g} / {g.strike_floor:g}), seeds {a.seed}..: FD against {row}")


if __name__ == "__main__":
    main()
