"""Experiment (issue 14): apply a late-part smoothing to a sampler checkpoint's waveforms after the fact and write
a new checkpoint, to choose ``train.sampler_monotone_*`` on the validation split without refitting.

``python scripts/sampler_smooth.py IN OUT --after 0.75 [--mode cummin --rise 1.0 | --mode expfit]``

``cummin``: :func:`pianoforge.training.sampler_late.monotone_late` (what the fit step does); ``expfit``: per key
and STFT bin (n_fft 2048, hop 256), the magnitude after ``--after`` seconds replaced by the least-squares
exponential decay of that bin (phase kept, faded in over 4 frames). Nothing else in the checkpoint changes."""
import argparse
import json

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from scipy.signal import istft, stft

from pianoforge.training.sampler_late import monotone_late


def expfit(w: np.ndarray, sr: int, after: float, n_fft: int = 2048, hop: int = 256) -> np.ndarray:
    _f, t, X = stft(w, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="even", padded=True)
    mag = np.abs(X)
    j0 = int(np.searchsorted(t, after))
    if j0 >= mag.shape[1] - 2 or not np.any(w):
        return w
    late = mag[:, j0:]
    tt = np.arange(late.shape[1], dtype=np.float64)
    A = np.stack([np.ones_like(tt), tt], 1)
    coef, *_ = np.linalg.lstsq(A, np.log(late + 1e-9).T, rcond=None)  # (2, bins)
    ramp = np.clip(tt / 4.0, 0, 1)[None, :]
    mag[:, j0:] = late * (1 - ramp) + np.exp((A @ coef).T) * ramp
    _t, y = istft(mag * np.exp(1j * np.angle(X)), fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop,
                  boundary=True)
    return y[:len(w)].astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--after", type=float, default=0.75, help="seconds after the strike")
    ap.add_argument("--mode", choices=("cummin", "expfit"), default="cummin")
    ap.add_argument("--rise", type=float, default=1.0, help="cummin: the largest rise allowed per frame (factor)")
    a = ap.parse_args()
    tensors = load_file(a.inp)
    with safe_open(a.inp, "np") as f:
        meta = f.metadata()
    sr = json.loads(meta["config"])["preset"]["audio"]["sample_rate"]
    waves = tensors["waves"].astype(np.float32)
    if a.mode == "cummin":
        out = monotone_late(waves, sr, a.after, a.rise)
    else:
        out = np.stack([expfit(w, sr, a.after) for w in waves])
    tensors["waves"] = out.astype(tensors["waves"].dtype)
    save_file(tensors, a.out, metadata=meta)
    print(f"{a.out}: late part (after {a.after} s) smoothed by {a.mode}")


if __name__ == "__main__":
    main()
