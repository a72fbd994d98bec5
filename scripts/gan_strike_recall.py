"""Which of a NoteGAN's strikes does the judge hear? (issue 19: why a consistent generator reads 4-6 notes/s)

``python scripts/gan_strike_recall.py CHECKPOINT [CHECKPOINT ...] --data STORE [-n 32] [--split validation]
[--strike-threshold T --strike-floor F]``

For each NoteGAN checkpoint: the strike rolls of ``-n`` latents (seeds 0..n-1, as ``eval gan``) from
``forward_with_roll`` (per key, level in dictionary-note units: 1 = the dictionary's velocity-80 note), their
clips made as ``generate`` makes them, and the judge's transcription of each clip (basic-pitch,
:func:`pianoforge.evaluation.judge.transcribe`). The same for ``-n`` real clips of ``--split`` (the clips
``eval gan`` uses): their stored score's strikes in the same units (velocity / 80) and their stored audio.

A strike is *heard* when the judge has a note of its pitch starting within ``--tolerance`` seconds of the
strike's frame; a judged note is *explained* when a strike of level > 0.05 of its pitch lies within the same
tolerance. Prints per set: strikes per clip and the share heard in level bins, judged notes per clip (the
``eval gan`` density times the clip length) and the share explained; strikes per clip and the share heard by
the number of strikes in their frame, by register, and for re-strikes of a key struck less than 0.5 s before;
the share of pairs struck in one frame that lie a semitone apart modulo the octave (minor seconds, major
sevenths: 2/11 of all pairs for random pitch classes). Writes ``--out`` (JSON) when given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

BINS = (0.05, 0.25, 0.5, 1.0, 2.0, float("inf"))


def recall_rows(rolls: list[np.ndarray], notes: list[list], frame_s: float, tol: float) -> dict[str, object]:
    """rolls: per clip (88, W) strike levels; notes: per clip the judge's notes -> summary dict."""
    counts, heard = np.zeros(len(BINS) - 1), np.zeros(len(BINS) - 1)
    n_notes, explained = 0, 0
    by_chord: dict[str, list[int]] = {"1": [0, 0], "2-3": [0, 0], "4+": [0, 0]}  # strikes in the frame: [n, heard]
    by_register: dict[str, list[int]] = {"A0-B2": [0, 0], "C3-B4": [0, 0], "C5-C8": [0, 0]}
    ringing = [0, 0]  # strikes of a key struck again within 0.5 s: [n, heard]
    pairs = [0, 0]  # pairs of strikes in one frame: [n, a semitone apart modulo the octave]
    for roll, ns in zip(rolls, notes, strict=True):
        by_pitch: dict[int, list[float]] = {}
        for n in ns:
            by_pitch.setdefault(int(n.pitch), []).append(float(n.start))
        starts = {p: np.asarray(v) for p, v in by_pitch.items()}
        keys, frames = np.nonzero(roll > BINS[0])
        strike_times: dict[int, list[float]] = {}
        per_frame = (roll > BINS[0]).sum(0)
        ring_set, last = set(), {}
        for t, k in zip(*np.nonzero((roll > BINS[0]).T), strict=True):  # in time order
            if int(k) in last and (t - last[int(k)]) * frame_s <= 0.5:
                ring_set.add((int(k), int(t)))  # the key was struck less than 0.5 s before: still ringing
            last[int(k)] = int(t)
        ringing[0] += len(ring_set)
        for t in np.nonzero(per_frame >= 2)[0]:  # intervals between the strikes of one frame
            ks = np.nonzero(roll[:, t] > BINS[0])[0]
            iv = (ks[None, :] - ks[:, None])[np.triu_indices(len(ks), 1)] % 12
            pairs[0] += len(iv)
            pairs[1] += int(np.isin(iv, (1, 11)).sum())
        for k, t in zip(keys, frames, strict=True):
            level, when = float(roll[k, t]), t * frame_s
            b = int(np.searchsorted(BINS, level, side="right")) - 1
            counts[b] += 1
            s = starts.get(21 + int(k))
            hit = bool(s is not None and np.abs(s - when).min() <= tol)
            heard[b] += hit
            c = int(per_frame[t])
            for group, key in ((by_chord, "1" if c == 1 else "2-3" if c <= 3 else "4+"),
                               (by_register, "A0-B2" if k + 21 < 48 else "C3-B4" if k + 21 < 72 else "C5-C8")):
                group[key][0] += 1
                group[key][1] += hit
            if (int(k), int(t)) in ring_set:
                ringing[1] += hit
            strike_times.setdefault(21 + int(k), []).append(when)
        for n in ns:
            n_notes += 1
            st = strike_times.get(int(n.pitch))
            explained += bool(st is not None and np.abs(np.asarray(st) - float(n.start)).min() <= tol)
    c = len(rolls)
    return {"strikes_per_clip": (counts / c).round(2).tolist(),
            "heard_share": np.where(counts > 0, heard / np.maximum(counts, 1), np.nan).round(3).tolist(),
            "strikes_total_per_clip": round(float(counts.sum() / c), 2),
            "heard_per_clip": round(float(heard.sum() / c), 2),
            "judged_notes_per_clip": round(n_notes / c, 2),
            "heard_by_chord": {k: [round(n / c, 2), round(h / max(n, 1), 3)] for k, (n, h) in by_chord.items()},
            "heard_by_register": {k: [round(n / c, 2), round(h / max(n, 1), 3)] for k, (n, h) in by_register.items()},
            "restrikes_within_0.5s": [round(ringing[0] / c, 2), round(ringing[1] / max(ringing[0], 1), 3)],
            "semitone_pair_share": round(pairs[1] / max(pairs[0], 1), 3),
            "explained_share": round(explained / max(n_notes, 1), 3),
            "median_level": round(float(np.median(np.concatenate([r[r > BINS[0]] for r in rolls]))), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--tolerance", type=float, default=0.07, help="onset tolerance in seconds (default 0.07)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--strike-threshold", type=float, help="notegan: its strike rule (default: the checkpoint's)")
    ap.add_argument("--strike-floor", type=float, help="notegan: its strike rule (default: the checkpoint's)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.evaluation.judge import transcribe
    from pianoforge.improvise import GanGenerator
    from pianoforge.training.gan import note_units

    store = FeatureStore(a.data)
    hop, sr = store.preset.audio.hop_length, store.preset.audio.sample_rate
    frame_s = hop / sr
    ds = GanImages(store, a.split)
    idx = np.unique(np.linspace(0, len(ds) - 1, min(a.n, len(ds))).round().astype(int))
    rolls = [note_units(ds.roll(int(i))[None])[0].numpy() for i in idx]
    notes = [transcribe(ds.audio(int(i)).numpy(), sr) for i in idx]
    rows = {"real": recall_rows(rolls, notes, frame_s, a.tolerance)}
    for path in a.checkpoints:
        gen = GanGenerator.from_checkpoint(path)
        gen.set_strike_rule(a.strike_threshold, a.strike_floor)
        z = torch.stack([gen.latent(s) for s in range(a.n)])
        with torch.inference_mode():
            pairs = [gen.model.eval().forward_with_roll(z[i:i + 1]) for i in range(a.n)]
        rolls = [r[0].numpy() for _, r in pairs]
        clips = gen.render(z, list(range(a.n)))
        notes = [transcribe(y, clips.sample_rate) for y in clips.audio]
        rows[str(path)] = recall_rows(rolls, notes, frame_s, a.tolerance)
    bins = [f"{lo:g}-{hi:g}" for lo, hi in zip(BINS[:-1], BINS[1:], strict=True)]
    print(f"level bins (dictionary notes): {bins}")
    for name, r in rows.items():
        print(f"{name}\n  strikes/clip {r['strikes_per_clip']} total {r['strikes_total_per_clip']}, median level "
              f"{r['median_level']}\n  heard share {r['heard_share']} -> {r['heard_per_clip']} heard/clip\n  "
              f"judged notes/clip {r['judged_notes_per_clip']}, explained by a strike {r['explained_share']:.0%}\n  "
              f"[strikes/clip, heard share] by strikes in the frame {r['heard_by_chord']}, by register "
              f"{r['heard_by_register']}, re-strikes within 0.5 s {r['restrikes_within_0.5s']}\n  "
              f"pairs struck together a semitone apart (mod 12): {r['semitone_pair_share']:.0%}")
    if a.out:
        a.out.write_text(json.dumps({"bins": bins, "n": a.n, "split": a.split, "tolerance": a.tolerance,
                                     "sets": rows}, indent=1))


if __name__ == "__main__":
    main()
