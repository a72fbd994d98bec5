"""How close can a frame-quantized magnitude model get to FluidSynth? Three measurements on isolated notes.

``python scripts/sound_floor.py [--keys 15 39 60]`` renders single notes with the training data's renderer
and soundfont (dry, gain 0.5, 16 kHz, the ``default`` STFT) and prints RMS log-magnitude differences in dB
over every bin of the note's first 2 s, 20 log10(|X| + 1e-5) as in the LSD:

1. **onset shift**: the same note struck 64 / 128 / 192 samples later (inside one 256-sample frame), with
   frames aligned: what a model that sees onsets only to the frame (the score encoding) cannot know;
2. **velocity**: the same note at another velocity after the best single gain (how far velocity is from a
   pure gain, i.e. what a per-note gain can explain);
3. **rank**: a rank-R Itakura-Saito NMF of the note's own power spectrogram (the best any model with R
   fixed spectra per key and free per-frame weights could do on that note).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pianoforge.audio.render import render_score
from pianoforge.audio.spectral import magnitude, stft
from pianoforge.config import load_preset
from pianoforge.midi.score import Note, make_score


def note_db(preset, key: int, velocity: int, offset: int, seconds: float = 2.0) -> np.ndarray:
    """(bins, frames) 20 log10(|X| + 1e-5) of MIDI key ``21 + key`` struck ``offset`` samples after 1 s."""
    a = preset.audio
    sr, hop = a.sample_rate, a.hop_length
    t0 = 1.0 + offset / sr
    x = render_score(make_score([Note(21 + key, t0, t0 + seconds, velocity)]), sr, preset.render, int((seconds + 2) * sr))
    f0 = int(1.0 * sr / hop)
    m = magnitude(stft(torch.from_numpy(x), a)).numpy()[:, f0:f0 + int(seconds * a.frame_rate)]
    return 20.0 * np.log10(m + 1e-5)


def is_nmf(v: np.ndarray, rank: int, iterations: int = 300, seed: int = 0) -> np.ndarray:
    """Rank-``rank`` Itakura-Saito NMF (multiplicative updates) of a nonnegative (bins, frames) power."""
    rng = np.random.default_rng(seed)
    tiny = 1e-20
    w = rng.uniform(0.5, 1.5, (v.shape[0], rank)) * v.mean()
    h = rng.uniform(0.5, 1.5, (rank, v.shape[1]))
    for _ in range(iterations):
        wh = w @ h + tiny
        w *= ((v / wh**2) @ h.T) / ((1 / wh) @ h.T + tiny)
        wh = w @ h + tiny
        h *= (w.T @ (v / wh**2)) / (w.T @ (1 / wh) + tiny)
    return w @ h


def rms(d: np.ndarray) -> float:
    return float(np.sqrt(np.mean(d**2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, nargs="+", default=[15, 39, 60], help="key indices 0..87 (default 15 39 60)")
    ap.add_argument("--preset", default="default", help="preset whose audio/render settings to use")
    args = ap.parse_args()
    preset = load_preset(args.preset)
    print("key  shift64 shift128 shift192 | vel70 vel110 vel40 (dB after gain) | rank4 rank8 rank16 rank32")
    for key in args.keys:
        base = note_db(preset, key, 80, 0)
        shifts = [rms(note_db(preset, key, 80, off) - base) for off in (64, 128, 192)]
        vels = []
        for v in (70, 110, 40):
            d = note_db(preset, key, v, 0) - base
            vels.append(rms(d - d.mean()))
        power = np.maximum(10.0 ** (base / 20.0) - 1e-5, 0.0) ** 2 + 1e-10
        ranks = [rms(20.0 * np.log10(np.sqrt(is_nmf(power, r)) + 1e-5) - base) for r in (4, 8, 16, 32)]
        cells = " ".join(f"{v:7.2f}" for v in shifts) + " | " + " ".join(f"{v:5.2f}" for v in vels) + " | " \
            + " ".join(f"{v:5.2f}" for v in ranks)
        print(f"{key:3d}  {cells}")


if __name__ == "__main__":
    main()
