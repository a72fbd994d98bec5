"""Validation-split LSD of perform checkpoints (the selection a sampler variant is chosen by; never the test
split): ``python scripts/sampler_val.py STORE CKPT [CKPT ...]``. Prints each piece's multi-resolution LSD (dB)
against the stored reference and the mean."""
import sys

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.evaluation.metrics import lsd_db
from pianoforge.inference import PerformRenderer
from pianoforge.midi.score import load_score

store = FeatureStore(sys.argv[1])
for ckpt in sys.argv[2:]:
    r = PerformRenderer.from_checkpoint(ckpt)
    vals = []
    for meta in store.pieces("validation"):
        ref = np.asarray(store.arrays(meta["piece_id"]).audio, dtype=np.float32)
        y = r.render_score(load_score(meta["midi"])).audio[:len(ref)]
        vals.append(lsd_db(y, ref[:len(y)], store.preset.audio.sample_rate))
    print(ckpt, "validation LSD", " ".join(f"{v:.2f}" for v in vals), f"mean {np.mean(vals):.3f}", flush=True)
