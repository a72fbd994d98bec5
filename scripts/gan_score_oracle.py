"""What NoteGAN's note head makes of the real scores: the ceiling of a generator that plays them (issue 19).

``python scripts/gan_score_oracle.py CHECKPOINT --data STORE [-n 64] [--split validation]``

Takes the ``-n`` clips of ``--split`` that ``eval gan`` takes, and plays each real clip's stored score through the
checkpoint's own note dictionary: every onset at velocity / 80 dictionary notes (the units of the generator's
strike levels), on the dictionary's short note when the key is held under 40 frames and on its long note
otherwise, plus the checkpoint's learned floor; then the image map, the phase reconstruction and the judge exactly
as ``eval gan`` does for generated clips. Prints ``eval gan``'s figures (FD, notes/s, polyphony, pitch-class
entropy, tonality) for these "oracle" clips and for the real clips, and the row-moment distance of the oracle
images to the real images: what NoteGAN would score if its trunk wrote the real scores.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

LONG_HOLD = 40
"""Held frames from which an onset plays the dictionary's long note (0.64 s at 62.5 frames/s)."""


def held_frames(held: torch.Tensor) -> torch.Tensor:
    """Held roll (88, W) of 0/1 -> (88, W): at each frame, for how many frames from there the key stays held."""
    out = torch.zeros_like(held)
    run = torch.zeros(held.shape[0])
    for t in range(held.shape[1] - 1, -1, -1):
        run = torch.where(held[:, t] > 0, run + 1, torch.zeros(()))
        out[:, t] = run
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from pianoforge import adversarial as adv
    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.evaluation.gan_metrics import compare_sets
    from pianoforge.gan_audio import images_to_audio
    from pianoforge.improvise import GanGenerator
    from pianoforge.midi.encoding import HELD
    from pianoforge.training.gan import note_units

    gen = GanGenerator.from_checkpoint(a.checkpoint)
    head = gen.model.head
    holds = head.n // 88
    ds = GanImages(FeatureStore(a.data), a.split)
    idx = np.unique(np.linspace(0, len(ds) - 1, min(a.n, len(ds))).round().astype(int))
    real_imgs, oracle_imgs, real_audio = [], [], []
    with torch.no_grad():
        for i in idx:
            roll = note_units(ds.roll(int(i))[None])[0]  # (88, W) velocity / 80 at onsets
            score = ds.score(int(i))
            long_ = held_frames(torch.from_numpy(score[:, HELD].astype("float32")).T) >= LONG_HOLD
            levels = torch.zeros(1, head.n, roll.shape[1])
            levels[0, :88] = roll * ~long_
            levels[0, (holds - 1) * 88:] += roll * long_
            oracle_imgs.append(head.to_image(head.magnitude(levels, levels) + head.floor()[:, None]))
            real_imgs.append(ds[int(i)][None])
            real_audio.append(ds.audio(int(i)).numpy())
    oracle, real = torch.cat(oracle_imgs).clamp(-1, 1), torch.cat(real_imgs)
    p = gen.preset.audio
    audio, _ = images_to_audio(oracle, gen.normalizer, gen.grid, p, gen.phase, gen.iterations, list(range(len(idx))))
    rows = compare_sets({"oracle": audio, "real": real_audio}, gen.sample_rate)
    moment = adv.spectral_moment_distance(oracle, real)
    print(f"{len(idx)} {a.split} clips; oracle image row-moment distance to the real images {moment:.4f}, mean "
          f"{float((oracle - real).mean()):+.3f}")
    for name, r in rows.items():
        print(f"{name:7s} FD {r['fd']:6.1f}  notes/s {r['note_density']:5.2f}  polyphony {r['polyphony']:4.2f}  "
              f"PC entropy {r['pitch_class_entropy']:4.2f}  tonality {r['tonality_db']:5.1f} dB")
    if a.out:
        a.out.write_text(json.dumps({"checkpoint": str(a.checkpoint), "split": a.split, "n": len(idx),
                                     "moment_distance": moment, "sets": rows}, indent=1))


if __name__ == "__main__":
    main()
