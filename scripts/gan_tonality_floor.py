"""How much of a NoteGAN generator's tonality gap is its learned floor (issue 19)?

``python scripts/gan_tonality_floor.py [CKPT] [-n 32] [--data STORE]``

NoteGAN's image is ``log(sum of struck dictionary notes + floor)``, with a learned per-bin floor (``NoteHead.floor``)
that fills the spectrum between partials. This renders ``n`` clips (seeds 0..n-1, as ``generate``) with that floor
scaled by 1 (as trained), 0.3, 0.1 and 0, and prints the median tonality (``eval gan``'s measure; the real test
clips measure -8.8 dB and their resynthesis through the same phase path -8.7). With ``--data`` (a gan store on the
generator's geometry) it also renders ``n`` real test clips' own strike rolls (their score) through the same
dictionary, every strike given the short or else the long hold: the tonality of the real music as the
dictionary plays it, which no choice of notes by the generator can beat."""
import argparse

import numpy as np
import torch

from pianoforge.errors import PianoforgeError
from pianoforge.evaluation.gan_metrics import tonality_db
from pianoforge.improvise import GanGenerator
from pianoforge.models.gan.notegan import LOG_SCALE, NoteHead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", default=None, help="a NoteGAN export (default: gan-default)")
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--data", default=None, help="a gan store: also render its test clips' strike rolls")
    a = ap.parse_args()
    try:
        g = GanGenerator.from_checkpoint(a.checkpoint)
    except PianoforgeError as e:
        raise SystemExit(f"error: {e}") from None
    head = getattr(g.model, "head", None)
    if not isinstance(head, NoteHead):
        raise SystemExit(f"{a.checkpoint or 'gan-default'}: not a NoteGAN generator")
    trained = head.log_floor.detach().clone()
    z = torch.stack([g.latent(s) for s in range(a.n)])
    print("floor (linear magnitude) 10/50/90 %:", np.round(np.quantile(head.floor().detach().numpy(), [0.1, 0.5, 0.9]), 5))
    try:
        for scale in (1.0, 0.3, 0.1, 0.0):
            with torch.no_grad():
                head.log_floor.copy_(trained + (np.log(scale) / LOG_SCALE if scale > 0 else -1e3))
            clips = g.render(z, list(range(a.n)))
            t = [tonality_db(np.asarray(y), g.sample_rate) for y in clips.audio]
            print(f"floor x {scale:g}: tonality median {np.median(t):.2f} dB over {a.n} clips", flush=True)
    finally:
        with torch.no_grad():
            head.log_floor.copy_(trained)
    if a.data:
        real_rolls(g, head, a.data, a.n)


def real_rolls(g: GanGenerator, head: NoteHead, data: str, n: int) -> None:
    """The real test clips' strike rolls through the generator's dictionary (and its trained floor)."""
    from pianoforge.data.gan_images import GanImages
    from pianoforge.data.store import FeatureStore
    from pianoforge.gan_audio import images_to_audio
    from pianoforge.training.gan import note_units

    ds = GanImages(FeatureStore(data), "test")
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
    rolls = torch.stack([note_units(ds.roll(int(i))) for i in idx])  # (n, 88, W) dictionary-note units
    holds = head.n // 88
    for j in range(holds):
        levels = torch.zeros(len(idx), head.n, rolls.shape[-1])
        levels[:, j * 88:(j + 1) * 88] = rolls
        with torch.no_grad():
            img = head.to_image(head.magnitude(levels, levels) + head.floor()[:, None])
        audio, _ = images_to_audio(img, g.normalizer, g.grid, g.audio_config, g.phase, g.iterations, list(range(len(idx))))
        t = [tonality_db(np.asarray(y), g.sample_rate) for y in audio]
        print(f"real test rolls ({len(idx)}), every strike on hold {j}: tonality median {np.median(t):.2f} dB", flush=True)


if __name__ == "__main__":
    main()
