"""How far the judge's onset-F1 ratio moves under changes a listener would not call a different performance
(issue 14: is a ratio of 0.991 distinguishable from 1.0?).

``python scripts/judge_noise.py STORE [--split validation|test]``

For every piece of the split, the stored FluidSynth reference is judged as it is and after each perturbation:
white noise 60 dB under its RMS, a delay of 2 ms (32 samples at 16 kHz, inside one 64-sample block of
FluidSynth's own event clock), a gain of -1 dB, float16 rounding. Prints, per perturbation, the ratio of the
summed onset F1 to the reference's (as ``eval`` and ``scripts/sampler_val.py`` compute it) and the per-piece
differences. No model is involved, so the test split may be used without choosing anything by it."""
import sys

import numpy as np

from pianoforge.data.store import FeatureStore
from pianoforge.evaluation.judge import judge_audio
from pianoforge.midi.score import load_score


def perturbations(ref: np.ndarray, sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    d = int(round(0.002 * sr))
    return {"noise -60 dB": ref + (1e-3 * rms * rng.standard_normal(len(ref))).astype(np.float32),
            "delay 2 ms": np.concatenate([np.zeros(d, np.float32), ref[:-d]]),
            "gain -1 dB": ref * np.float32(10 ** (-1 / 20)),
            "float16": ref.astype(np.float16).astype(np.float32)}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    split = "test" if "--split" in sys.argv and sys.argv[sys.argv.index("--split") + 1] == "test" else "validation"
    store = FeatureStore(args[0])
    sr = store.preset.audio.sample_rate
    rng = np.random.default_rng(0)
    base: list[float] = []
    rows: dict[str, list[float]] = {}
    for meta in store.pieces(split):
        ref = np.asarray(store.arrays(meta["piece_id"]).audio, dtype=np.float32)
        score = load_score(meta["midi"])
        base.append(judge_audio(ref, sr, score)["onset_f1"])
        for name, y in perturbations(ref, sr, rng).items():
            rows.setdefault(name, []).append(judge_audio(y, sr, score)["onset_f1"])
        print(f"{meta['piece_id']}: reference F1 {base[-1]:.3f}; "
              + ", ".join(f"{k} {v[-1] - base[-1]:+.3f}" for k, v in rows.items()), flush=True)
    for name, f1 in rows.items():
        print(f"{split} ({len(base)} pieces) {name}: F1 ratio {sum(f1) / max(sum(base), 1e-9):.4f}")


if __name__ == "__main__":
    main()
