"""How much of a NoteGAN generator's tonality gap is its learned floor (issue 19)?

``python scripts/gan_tonality_floor.py [CKPT] [-n 32]``

NoteGAN's image is ``log(sum of struck dictionary notes + floor)``, with a learned per-bin floor (``NoteHead.floor``)
that fills the spectrum between partials. This renders ``n`` clips (seeds 0..n-1, as ``generate``) with that floor
scaled by 1 (as trained), 0.3, 0.1 and 0, and prints the median tonality (``eval gan``'s measure; the real test
clips measure -8.8 dB and their resynthesis through the same phase path -8.7)."""
import argparse

import numpy as np
import torch

from pianoforge.evaluation.gan_metrics import tonality_db
from pianoforge.improvise import GanGenerator
from pianoforge.models.gan.notegan import LOG_SCALE, NoteHead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", default=None, help="a NoteGAN export (default: gan-default)")
    ap.add_argument("-n", type=int, default=32)
    a = ap.parse_args()
    g = GanGenerator.from_checkpoint(a.checkpoint)
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


if __name__ == "__main__":
    main()
