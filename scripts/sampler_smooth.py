"""Experiment (issue 14): apply a late-part smoothing to a sampler checkpoint's waveforms after the fact and write
a new checkpoint, to choose ``train.sampler_monotone_*`` on the validation split without refitting.

``python scripts/sampler_smooth.py IN OUT --after 0.75 [--mode cummin --rise 1.0 | --mode expfit | --mode gate
--alpha 2 | --mode subf0 --depth 20 --ratio 0.8]``

``cummin``: :func:`pianoforge.training.sampler_late.monotone_late` (what the fit step does); ``expfit``: per key
and STFT bin (n_fft 2048, hop 256), the magnitude after ``--after`` seconds replaced by the least-squares
exponential decay of that bin (phase kept, faded in over 4 frames); ``gate``: :func:`gate`, spectral subtraction
of each frame's median floor; ``mask``: :func:`partial_mask`, the late part kept on the key's own partials (as
its early spectrum shows them); ``subf0``: :func:`pianoforge.training.sampler_late.sub_fundamental_late`, the late
energy under the key's fundamental lowered by ``--depth`` dB (``subf0-follow``: limited to the decay of the key's
energy above it). Nothing else in the checkpoint changes."""
import argparse
import json

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from pianoforge.config import LOWEST_PITCH, pitch_hz
from pianoforge.training.sampler_late import edit_late, monotone_late, sub_fundamental_late


def expfit(w: np.ndarray, sr: int, after: float) -> np.ndarray:
    """Each bin's late magnitude replaced by its least-squares exponential decay."""
    def fit(mag, t, j0):
        late = mag[:, j0:]
        tt = np.arange(late.shape[1], dtype=np.float64)
        A = np.stack([np.ones_like(tt), tt], 1)
        coef, *_ = np.linalg.lstsq(A, np.log(late + 1e-9).T, rcond=None)  # (2, bins)
        return np.exp((A @ coef).T)
    return edit_late(w, sr, after, fit)


def gate(w: np.ndarray, sr: int, after: float, alpha: float) -> np.ndarray:
    """Spectral subtraction of each frame's broadband floor: every late bin's magnitude m becomes
    ``m * sqrt(max(0, 1 - (alpha * floor / m) ** 2))``, ``floor`` the frame's median magnitude over the bins (a
    struck string's late spectrum is a few partials; the fit's noise fills the rest)."""
    def sub(mag, t, j0):
        late = mag[:, j0:]
        floor = np.median(late, axis=0, keepdims=True)
        return late * np.sqrt(np.clip(1.0 - (alpha * floor / np.maximum(late, 1e-12)) ** 2, 0.0, 1.0))
    return edit_late(w, sr, after, sub)


def partial_mask(w: np.ndarray, sr: int, after: float, depth_db: float, key: int,
                 early: tuple[float, float] = (0.05, 0.5)) -> np.ndarray:
    """Keep the late part's energy on the key's own partials: the key's early spectrum (mean power over
    ``early`` seconds, where many training notes make the fit accurate) marks, per bin, how far it lies under
    the strongest bin within half a partial spacing around it; late bins more than ``depth_db`` under it are
    removed (a 10 dB linear ramp in dB). ``key`` 0..87 (A0 = 0) sets the partial spacing."""
    from scipy.ndimage import maximum_filter1d

    def mask(mag, t, j0):
        e = (t >= early[0]) & (t <= early[1])
        E = 10 * np.log10(np.mean(mag[:, e] ** 2, axis=1) + 1e-20)
        half = max(int(round(pitch_hz(key + LOWEST_PITCH) / (sr / 2048) / 2)), 1)  # edit_late's n_fft
        below = maximum_filter1d(E, 2 * half + 1) - E  # dB under the local partial peak
        return mag[:, j0:] * np.clip((depth_db + 10.0 - below) / 10.0, 0.0, 1.0)[:, None]
    return edit_late(w, sr, after, mask)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--after", type=float, default=0.75, help="seconds after the strike")
    ap.add_argument("--mode", choices=("cummin", "expfit", "gate", "mask", "subf0", "subf0-follow"), default="cummin")
    ap.add_argument("--rise", type=float, default=1.0, help="cummin: the largest rise allowed per frame (factor)")
    ap.add_argument("--alpha", type=float, default=2.0, help="gate: over-subtraction of the frame's median floor")
    ap.add_argument("--depth", type=float, default=None,
                    help="mask: dB under the local partial peak kept (default 30); subf0: dB removed (default 20)")
    ap.add_argument("--ratio", type=float, default=0.8, help="subf0: edit bins under ratio x the key's f0")
    a = ap.parse_args()
    if a.depth is None:
        a.depth = 20.0 if a.mode == "subf0" else 30.0
    tensors = load_file(a.inp)
    with safe_open(a.inp, "np") as f:
        meta = f.metadata()
    sr = json.loads(meta["config"])["preset"]["audio"]["sample_rate"]
    waves = tensors["waves"].astype(np.float32)
    if a.mode == "cummin":
        out = monotone_late(waves, sr, a.after, a.rise)
    elif a.mode == "mask":
        out = np.stack([partial_mask(w, sr, a.after, a.depth, k) for k, w in enumerate(waves)])
    elif a.mode.startswith("subf0"):
        out = sub_fundamental_late(waves, sr, a.after, None if a.mode == "subf0-follow" else a.depth, a.ratio)
    elif a.mode == "gate":
        out = np.stack([gate(w, sr, a.after, a.alpha) for w in waves])
    else:
        out = np.stack([expfit(w, sr, a.after) for w in waves])
    tensors["waves"] = out.astype(tensors["waves"].dtype)
    save_file(tensors, a.out, metadata=meta)
    print(f"{a.out}: late part (after {a.after} s) smoothed by {a.mode}")


if __name__ == "__main__":
    main()
