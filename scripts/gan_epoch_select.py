"""Pick a GAN run's epoch on the validation split by the issue's own measures (issue 19: the checkpoint that
``val/moment_dist`` picks is partly luck), instead of by a training-time proxy.

``python scripts/gan_epoch_select.py RUN --data STORE [-n 64] [--seed 0] [--split validation] [--threads 1]
[--strike-threshold T --strike-floor F]``

``RUN`` must hold ``epochs/epoch-NNNN.safetensors`` (``--set train.keep_epoch_exports=true``). Each epoch is
evaluated with ``pianoforge eval gan`` on ``--split`` (``RUN/epoch-eval/SPLIT-sSEED[-tT-fF]/epoch-NNNN/``; an
existing report is reused), with a NoteGAN's strike rule when given (``--strike-threshold``, ``--strike-floor``:
how it plays, docs/improvise.md), and the rule, fixed before any result was seen, picks:

1. among the epochs whose notes/s, polyphony and pitch-class entropy are all within 20 % of the split's real
   clips, the lowest FD;
2. if there is none, the epoch with the smallest sum of the three relative deviations.

Writes ``RUN/epoch_select[-SPLIT][-tT-fF].json`` (SPLIT when not validation) and prints one line per epoch and the choice. Never reads the test split
unless told to (``--split test`` would be tuning to it: don't)."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

STATS = ("note_density", "polyphony", "pitch_class_entropy")


def deviations(gen: dict, real: dict) -> dict[str, float]:
    return {k: abs(gen[k] / real[k] - 1.0) for k in STATS}


def choose(rows: list[dict]) -> tuple[dict, str]:
    inside = [r for r in rows if max(r["dev"].values()) <= 0.2]
    if inside:
        return min(inside, key=lambda r: r["fd"]), "lowest FD among epochs with all three statistics within 20 %"
    return min(rows, key=lambda r: sum(r["dev"].values())), "none within 20 %: smallest summed relative deviation"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", required=True)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--strike-threshold", type=float, help="notegan: play strikes from T (default: the export's)")
    ap.add_argument("--strike-floor", type=float, help="notegan: at F or louder (default: the export's)")
    a = ap.parse_args()
    import torch

    from pianoforge.evaluation.gan_metrics import evaluate_gan

    torch.set_num_threads(a.threads)
    exports = sorted((a.run / "epochs").glob("epoch-*.safetensors"))
    if not exports:
        raise SystemExit(f"{a.run}: no epochs/epoch-NNNN.safetensors (train with --set train.keep_epoch_exports=true)")
    rule = "" if a.strike_threshold is None else f"-t{a.strike_threshold:g}-f{a.strike_floor or 0:g}"
    rows = []
    for ck in exports:
        epoch = int(re.search(r"(\d+)", ck.stem).group(1))
        out = a.run / "epoch-eval" / f"{a.split}-s{a.seed}{rule}" / ck.stem
        mpath = out / "metrics.json"
        if not mpath.is_file():
            evaluate_gan(ck, a.data, out, split=a.split, n=a.n, seed=a.seed, listen=0,
                         strike_threshold=a.strike_threshold, strike_floor=a.strike_floor)
        m = json.loads(mpath.read_text())["sets"]
        g, r = m["generated"], m["real"]
        row = {"epoch": epoch, "checkpoint": str(ck), "fd": g["fd"], "dev": deviations(g, r),
               **{k: g[k] for k in (*STATS, "tonality_db", "diversity_ratio")}}
        rows.append(row)
        print(f"epoch {epoch:3d}: FD {g['fd']:6.1f}  notes/s {g['note_density']:5.2f}  polyphony {g['polyphony']:4.2f}  "
              f"PC entropy {g['pitch_class_entropy']:4.2f}  tonality {g['tonality_db']:5.1f} dB  "
              f"diversity {g['diversity_ratio']:.2f}  (real: {r['note_density']:.2f} / {r['polyphony']:.2f} / "
              f"{r['pitch_class_entropy']:.2f}; worst deviation {max(row['dev'].values()):.0%})", flush=True)
    best, why = choose(rows)
    print(f"chosen: epoch {best['epoch']} ({why})")
    name = f"epoch_select{'' if a.split == 'validation' else '-' + a.split}{rule}.json"
    (a.run / name).write_text(json.dumps({"split": a.split, "seed": a.seed, "n": a.n, "rule": why,
                                          "strike_rule": {"threshold": a.strike_threshold, "floor": a.strike_floor},
                                          "chosen": best, "epochs": rows}, indent=1))


if __name__ == "__main__":
    main()
